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

from ..errors import SpecError
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

    @classmethod
    def arguments(cls, spec, stage, up) -> dict[str, Any]:
        ups = [spec.up_channels(level) for level in range(1, spec.depth + 1)]
        widths = list(spec.level_widths[:-1])
        return {"widths": widths, "up_channels": ups, "node_blocks": spec.skip["node_blocks"], "stage": stage, "up": up}

    def __init__(self, widths: list[int], up_channels: list[int], node_blocks: int, stage, up) -> None:
        """`up_channels[l-1]`: channels of the up operator's output at level l; `stage` and
        `up` build the nodes' blocks and up operators the network's own way."""
        super().__init__()
        ws, d = widths, len(widths)
        self.depth, self.widths = d, ws
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for level in range(1, d):
            for j in range(1, d - level + 1):
                self.ups[f"{level}_{j}"] = up(ws[level], ws[level - 1])
                c_in = up_channels[level - 1] + j * ws[level - 1]
                self.nodes[f"{level}_{j}"] = stage(c_in, ws[level - 1], node_blocks, 2 ** (level - 1))

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
