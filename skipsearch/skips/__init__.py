"""Skip designs: one file per design, registered by name in SKIPS."""

from __future__ import annotations

from .base import SKIPS, SkipDesign
from ..registry import import_all

import_all(__name__, __path__)  # each module registers itself

__all__ = ["SKIPS", "SkipDesign"]
