"""skipsearch: multi-objective architecture search over U-Net skip designs."""

from __future__ import annotations

from .blocks import BLOCKS
from .errors import SpecError, UserError
from .export import load
from .model import UNet, build_model
from .presets import list_presets, preset
from .skips import SKIPS
from .spec import ArchSpec

__version__ = "0.1.0"


def list_blocks() -> list[str]:
    """Registered block families."""
    return BLOCKS.names()


def list_skips() -> list[str]:
    """Registered skip designs."""
    return SKIPS.names()


__all__ = [
    "ArchSpec",
    "SpecError",
    "UNet",
    "UserError",
    "build_model",
    "list_blocks",
    "list_presets",
    "list_skips",
    "load",
    "preset",
]
