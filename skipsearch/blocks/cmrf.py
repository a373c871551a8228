"""TinyU-Net's CMRF block (Chen et al., MICCAI 2024): cascaded multi-receptive fields."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..layers import nd
from .base import BLOCKS, BlockFamily


def _unit(c_in: int, c_out: int, k: int, act: bool, dims: int = 2) -> nn.Sequential:
    """conv (no bias) + BatchNorm (eps 1e-3, momentum 0.03) [+ GELU]; depthwise when k == 3."""
    groups = c_in if k == 3 else 1
    layers = [nd("Conv", dims)(c_in, c_out, k, padding=k // 2, groups=groups, bias=False)]
    layers.append(nd("BatchNorm", dims)(c_out, eps=1e-3, momentum=0.03))
    if act:
        layers.append(nn.GELU())
    return nn.Sequential(*layers)


class CMRFBlock(nn.Module):
    """PW to c_out/N, parity split, sum branch + N-1 cascaded depthwise stages, concat, PW.

    The split is interleaved (even / odd channel indices); the cascade runs on the odd
    half and every stage's output is kept. The residual applies only when c_in == c_out.
    """

    def __init__(self, c_in: int, c_out: int, n: int = 8, shortcut: bool = True, dims: int = 2) -> None:
        super().__init__()
        half = c_out // (2 * n)
        self.pw1 = _unit(c_in, c_out // n, 1, act=True, dims=dims)
        self.stages = nn.ModuleList(_unit(half, half, 3, act=False, dims=dims) for _ in range(n - 1))
        self.pw2 = _unit(c_out // 2, c_out, 1, act=True, dims=dims)
        self.residual = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw1(x)
        even, odd = y[:, 0::2], y[:, 1::2]
        parts = [even + odd]
        for stage in self.stages:
            odd = stage(odd)
            parts.append(odd)
        out = self.pw2(torch.cat(parts, dim=1))
        return x + out if self.residual else out


@BLOCKS.register("cmrf")
class CMRF(BlockFamily):
    symbol = "diamond"  # plotly marker on the dashboard
    test_params = {"n": 2}  # width 8 must be divisible by 2n
    defaults = {"n": 8, "shortcut": True}  # n channel groups = n - 1 depthwise stages
    merge, down, up, stem = "concat", "maxpool", "bicubic", "none"
    block = CMRFBlock

    @classmethod
    def check_width(cls, params: dict[str, Any], width: int, where: str) -> None:
        n = params["n"]
        if not 2 <= n <= 64:
            raise SpecError("block.n", n, "an integer 2-64 (channel groups; n - 1 depthwise stages)")
        if width % (2 * n):
            raise SpecError("block.n", n, f"a value with width divisible by 2n (2n = {2 * n})", f"width {width} at {where}")

    @classmethod
    def arguments(cls, c_in: Any, c_out: Any, params: dict[str, Any], stride: Any = 1) -> dict[str, Any]:
        return {"c_in": c_in, "c_out": c_out, "n": params["n"], "shortcut": params["shortcut"]}
