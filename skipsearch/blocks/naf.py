"""NAFNet's NAFBlock (Chen et al., ECCV 2022): activation-free, two gated residual branches."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..layers import LayerNorm2d, SimpleGate
from .base import BLOCKS, BlockFamily


class NAFBlock(nn.Module):
    """Branch 1: LN, 1x1 expand, 3x3 depthwise, SimpleGate, SCA, 1x1; branch 2: LN, 1x1, gate, 1x1.

    Both branches are scaled by learnable per-channel factors that start at zero, so a
    fresh block is the identity. SCA has no sigmoid, as in the official code.
    """

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        dw = c * dw_expand
        ffn = c * ffn_expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.drop1 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.drop2 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.conv2(self.conv1(self.norm1(x))))
        y = y * self.sca(y)
        y = x + self.drop1(self.conv3(y)) * self.beta
        z = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + self.drop2(z) * self.gamma


@BLOCKS.register("naf")
class NAF(BlockFamily):
    symbol = "circle"  # plotly marker on the dashboard
    defaults = {"dw_expand": 2, "ffn_expand": 2, "dropout": 0.0}
    merge, down, up, stem = "add", "conv", "pixelshuffle", "conv"
    changes_channels = False

    @classmethod
    def check_width(cls, params: dict[str, Any], width: int, where: str) -> None:
        for key in ("dw_expand", "ffn_expand"):
            if not 1 <= params[key] <= 16:
                raise SpecError(f"block.{key}", params[key], "an integer 1-16")
            if width * params[key] % 2:
                raise SpecError(
                    f"block.{key}",
                    params[key],
                    "a value that makes width x expand even",
                    f"SimpleGate splits {width} x {params[key]} channels at {where} into two halves",
                )
        if not 0.0 <= params["dropout"] < 1.0:
            raise SpecError("block.dropout", params["dropout"], "0 <= dropout < 1")

    @classmethod
    def build(cls, c_in: int, c_out: int, params: dict[str, Any]) -> nn.Module:
        return NAFBlock(c_out, params["dw_expand"], params["ffn_expand"], params["dropout"])
