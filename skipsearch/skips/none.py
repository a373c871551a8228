"""No skip connections: the decoder sees only the upsampled deeper tensor."""

from __future__ import annotations

import torch

from .base import SKIPS, Sizes, SkipDesign, State, Timeline, stages


@SKIPS.register("none")
class NoSkip(SkipDesign):
    color = "#7f7f7f"  # on the dashboard

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        pass  # nothing is kept: E_l dies as soon as the encoder moves on

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        return up

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels

    @classmethod
    def analytic(cls, spec, sizes: Sizes) -> Timeline:
        return [{} for _ in stages(spec.depth)]
