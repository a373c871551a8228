"""Block families: one file per family, registered by name in BLOCKS."""

from __future__ import annotations

from .base import BLOCKS, BlockFamily, make_stage
from ..registry import import_all

import_all(__name__, __path__)  # each module registers itself

__all__ = ["BLOCKS", "BlockFamily", "make_stage"]
