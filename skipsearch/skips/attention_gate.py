"""Attention U-Net's additive attention gates (Oktay et al., MIDL 2018) on every skip.

Each E_l is kept as a plain skip keeps it. When the decoder asks for level l, a gate
computes a per-pixel coefficient from E_l and the decoder's coarser feature:
alpha = sigmoid(psi(relu(W_x E_l + W_g g))), with W_x, W_g 1x1 convs to F_int channels
(W_x without bias, as in the paper's grid attention) and psi a 1x1 conv to one channel;
the skip passes on as alpha * E_l and is merged the family's own way.

Where the paper is silent or implementations differ: the gating signal g is the decoder
tensor after the up operator (the coarser feature brought to level l's size), as the
common PyTorch implementations do, rather than the coarser tensor with E_l strided
down to it; F_int = C_l / reduction (2 by default, at least 1). The gate only rescales
E_l, so the skip path holds exactly what a plain U-Net holds (1.875 M_E1 at depth 4).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..layers import nd
from .base import SKIPS, Sizes, SkipDesign, State, Timeline, merge, resolve_merge
from .plain import PlainSkip


class AttentionGate(nn.Module):
    """alpha = sigmoid(psi(relu(W_x x + W_g g))); returns alpha * x."""

    def __init__(self, c_skip: int, c_gate: int, inter: int, dims: int = 2) -> None:
        super().__init__()
        conv = nd("Conv", dims)
        self.w_x = conv(c_skip, inter, 1, bias=False)
        self.w_g = conv(c_gate, inter, 1)
        self.psi = conv(inter, 1, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.psi(torch.relu(self.w_x(x) + self.w_g(g))))
        return x * alpha


@SKIPS.register("attention_gate")
class AttentionGateSkip(SkipDesign):
    defaults = {"reduction": 2, "merge": "auto"}

    @classmethod
    def resolve(cls, params: dict[str, Any], spec) -> dict[str, Any]:
        if not 1 <= params["reduction"] <= 64:
            raise SpecError("skip.reduction", params["reduction"], "an integer 1-64 (F_int = level width / reduction)")
        return resolve_merge(params, spec)

    @classmethod
    def arguments(cls, spec, stage, up) -> dict[str, Any]:
        ups = [spec.up_channels(level) for level in range(1, spec.depth + 1)]
        widths = list(spec.level_widths[:-1])
        return {"widths": widths, "up_channels": ups, "reduction": spec.skip["reduction"], "merge": spec.skip["merge"]}

    def __init__(self, widths: list[int], up_channels: list[int], reduction: int, merge: str, dims: int = 2) -> None:
        """The gate at level l is driven by the up operator's output there (up_channels[l-1])."""
        super().__init__()
        self.merge, self.widths = merge, widths
        gates = [AttentionGate(w, up_channels[i], max(1, w // reduction), dims) for i, w in enumerate(widths)]
        self.gates = nn.ModuleList(gates)

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        state[level] = feat

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        return merge(self.merge, up, self.gates[level - 1](state.pop(level), up))

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels if self.merge == "add" else up_channels + self.widths[level - 1]

    @classmethod
    def analytic(cls, spec, sizes: Sizes) -> Timeline:
        return PlainSkip.analytic(spec, sizes)  # the gate rescales E_l; it keeps what plain keeps
