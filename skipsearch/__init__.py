"""skipsearch: multi-objective architecture search over U-Net skip designs."""

from __future__ import annotations

from .blocks import BLOCKS
from .costs.profile import Profile, profile
from .errors import SpecError, TrainingError, UserError
from .export import load
from .model import UNet, build_model
from .objectives import list_objectives
from .official import load_official
from .presets import list_presets, preset
from .results import load_results
from .search.run import run_study
from .skips import SKIPS
from .spec import ArchSpec
from .train import Budget, evaluate

__version__ = "0.1.0"


def list_blocks() -> list[str]:
    """Registered block families."""
    return BLOCKS.names()


def list_skips() -> list[str]:
    """Registered skip designs."""
    return SKIPS.names()


__all__ = [
    "ArchSpec",
    "Budget",
    "Profile",
    "SpecError",
    "TrainingError",
    "UNet",
    "UserError",
    "build_model",
    "evaluate",
    "list_blocks",
    "list_objectives",
    "list_presets",
    "list_skips",
    "load",
    "load_official",
    "load_results",
    "preset",
    "profile",
    "run_study",
]
