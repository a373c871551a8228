"""UNet++ (Zhou et al., 2018) dense nested skips, built from the spec's block family.

Node X(l, j) (level l, 1-based; position j >= 1 along the pathway, l + j <= depth) is
stage(concat[up(X(l+1, j-1)), X(l, 0), ..., X(l, j-1)]) with its own up operator, as in
the official code. Nodes are computed anti-diagonal by anti-diagonal as the encoder
hands levels over; the decoder at level l concatenates every X(l, j) after its own
upsampled input. All nodes of a level live until that level is decoded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..blocks import make_stage
from ..errors import SpecError
from ..operators import make_up
from .base import SKIPS, Sizes, SkipDesign, State, Timeline, area, stages


@SKIPS.register("dense")
class Dense(SkipDesign):
    color = "#9467bd"  # on the dashboard
    defaults = {"node_blocks": 1}

    @classmethod
    def resolve(cls, params: dict[str, Any], spec) -> dict[str, Any]:
        if not 1 <= params["node_blocks"] <= 16:
            raise SpecError("skip.node_blocks", params["node_blocks"], "an integer 1-16")
        return params

    def __init__(self, spec) -> None:
        super().__init__(spec)
        ws, d, n = spec.level_widths, spec.depth, self.params["node_blocks"]
        self.widths = ws
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for level in range(1, d):
            up = spec.up_channels(level)
            for j in range(1, d - level + 1):
                self.ups[f"{level}_{j}"] = make_up(spec.up, ws[level], ws[level - 1])
                self.nodes[f"{level}_{j}"] = make_stage(spec, up + j * ws[level - 1], ws[level - 1], n, 2 ** (level - 1))

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        state[level, 0] = feat
        for j in range(1, level):  # the new anti-diagonal, deepest node first
            m = level - j
            key = f"{m}_{j}"
            inputs = [self.ups[key](state[m + 1, j - 1])] + [state[m, i] for i in range(j)]
            state[m, j] = self.nodes[key](torch.cat(inputs, dim=1))

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        feats = [state.pop((level, j)) for j in range(self.depth - level + 1)]
        return torch.cat([up, *feats], dim=1)

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels + (self.depth - level + 1) * self.widths[level - 1]

    @classmethod
    def analytic(cls, spec, sizes: Sizes) -> Timeline:
        ws, d = spec.level_widths, spec.depth
        out = []
        for kind, level in stages(d):
            if kind == "encoder":  # level m holds X(m, 0..level-m)
                out.append({f"L{m}": (level - m + 1) * ws[m - 1] * area(sizes, m) for m in range(1, level + 1)})
            else:
                out.append({f"L{m}": (d - m + 1) * ws[m - 1] * area(sizes, m) for m in range(1, level)})
        return out

    def held(self, state: State) -> dict[str, list[torch.Tensor]]:
        out: dict[str, list[torch.Tensor]] = {}
        for (level, _), t in state.items():
            out.setdefault(f"L{level}", []).append(t)
        return out
