"""Plain U-Net skips: keep every E_l until its decoder level, then add or concatenate."""

from __future__ import annotations

from typing import Any

import torch

from .base import SKIPS, SkipDesign, State, merge, resolve_merge


@SKIPS.register("plain")
class PlainSkip(SkipDesign):
    name = "plain"
    defaults = {"merge": "auto"}  # auto: the block family's own merge

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.merge = self.params["merge"]
        self.widths = spec.level_widths

    @classmethod
    def resolve(cls, params: dict[str, Any], spec) -> dict[str, Any]:
        return resolve_merge(params, spec)

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        state[level] = feat

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        return merge(self.merge, up, state.pop(level))

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels if self.merge == "add" else up_channels + self.widths[level - 1]
