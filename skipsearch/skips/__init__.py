"""Skip designs: one file per design, registered by name in SKIPS."""

from __future__ import annotations

from .base import SKIPS, SkipDesign
from . import dense, msiam_iem, none, plain, sdi  # noqa: F401 - registration side effect

__all__ = ["SKIPS", "SkipDesign"]
