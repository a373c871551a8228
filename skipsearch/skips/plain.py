"""Plain U-Net skips: keep every E_l until its decoder level, then add or concatenate."""

from __future__ import annotations

from typing import Any

import torch

from .base import SKIPS, Sizes, SkipDesign, State, Timeline, area, merge, resolve_merge, stages


@SKIPS.register("plain")
class PlainSkip(SkipDesign):
    color = "#1f77b4"  # on the dashboard
    defaults = {"merge": "auto"}  # auto: the block family's own merge

    def __init__(self, widths: list[int], merge: str) -> None:
        super().__init__()
        self.widths, self.merge = widths, merge

    @classmethod
    def resolve(cls, params: dict[str, Any], spec) -> dict[str, Any]:
        return resolve_merge(params, spec)

    @classmethod
    def arguments(cls, spec, stage, up) -> dict[str, Any]:
        return {"widths": list(spec.level_widths[:-1]), "merge": spec.skip["merge"]}

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        state[level] = feat

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        return merge(self.merge, up, state.pop(level))

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels if self.merge == "add" else up_channels + self.widths[level - 1]

    @classmethod
    def analytic(cls, spec, sizes: Sizes) -> Timeline:
        ws = spec.level_widths
        out = []
        for kind, level in stages(spec.depth):
            kept = range(1, level + 1) if kind == "encoder" else range(1, level if kind == "decoder" else level)
            out.append({f"L{i}": ws[i - 1] * area(sizes, i) for i in kept})
        return out
