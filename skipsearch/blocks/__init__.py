"""Block families: one file per family, registered by name in BLOCKS."""

from __future__ import annotations

from .base import BLOCKS, BlockFamily, make_stage
from . import cmrf, conv, naf  # noqa: F401 - registration side effect

__all__ = ["BLOCKS", "BlockFamily", "make_stage"]
