"""NAFNet's NAFBlock (Chen et al., ECCV 2022): activation-free, two gated residual branches.

Option ``tlc`` (NAFNet's test-time local converter, ``NAFNetLocal`` in the official code;
Chu et al., arXiv 2112.04491): at inference the global average pooling of the channel
attention becomes a local mean whose window is 1.5x the feature size the block saw at the
training size (``train_size``), so full-frame statistics resemble training-crop ones.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecError
from ..layers import LayerNorm2d, SimpleGate, nd
from .base import BLOCKS, BlockFamily

TLC_BASE = 1.5  # the window is this many times the training-size feature map (official: 1.5)


def tlc_window(h: int, w: int, stride: int, train_size: int) -> tuple[int, int] | None:
    """The local window of a TLC block at `stride` on an h x w feature map, or None for
    global pooling.

    As NAFNetLocal fixes it by one dry run at the (square) training size: the feature map
    there is the padded training size over the block's stride, the window is that times
    int(1.5 train_size) // train_size, and pooling stays global when the window covers
    the whole map; a window longer than the map on one side covers it on that side.
    """
    base = int(train_size * TLC_BASE)
    k = max(1, train_size // stride * base // train_size)  # training crops are multiples of 2^depth
    if k >= h and k >= w:
        return None
    return min(h, k), min(w, k)


def local_mean(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Mean over every kh x kw window that fits (from an integral image), the border
    filled by replicating the outermost means, so the result has x's size."""
    h, w = x.shape[-2:]
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # cumsum precision
    s = F.pad(work.cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    out = (s[..., kh:, kw:] + s[..., :-kh, :-kw] - s[..., :-kh, kw:] - s[..., kh:, :-kw]) / (kh * kw)
    dh, dw = h - out.shape[-2], w - out.shape[-1]
    out = F.pad(out, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate")
    return out.to(x.dtype)


class NAFBlock(nn.Module):
    """Branch 1: LN, 1x1 expand, 3x3 depthwise, SimpleGate, SCA, 1x1; branch 2: LN, 1x1, gate, 1x1.

    Both branches are scaled by learnable per-channel factors that start at zero, so a
    fresh block is the identity. SCA has no sigmoid, as in the official code.
    """

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, dropout: float = 0.0, dims: int = 2) -> None:
        super().__init__()
        dw = c * dw_expand
        ffn = c * ffn_expand
        conv = nd("Conv", dims)
        self.norm1 = LayerNorm2d(c)
        self.conv1 = conv(c, dw, 1)
        self.conv2 = conv(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nd("AdaptiveAvgPool", dims)(1), conv(dw // 2, dw // 2, 1))
        self.conv3 = conv(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = conv(c, ffn, 1)
        self.conv5 = conv(ffn // 2, c, 1)
        self.drop1 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.drop2 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, *[1] * dims))
        self.gamma = nn.Parameter(torch.zeros(1, c, *[1] * dims))

    def attention(self, y: torch.Tensor) -> torch.Tensor:
        """SCA's per-channel weights for y (global average pooling, then a 1x1 conv)."""
        return self.sca(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.conv2(self.conv1(self.norm1(x))))
        y = y * self.attention(y)
        y = x + self.drop1(self.conv3(y)) * self.beta
        z = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + self.drop2(z) * self.gamma


class NAFLocalBlock(NAFBlock):
    """NAFBlock with TLC: in eval mode SCA pools locally once the feature map exceeds 1.5x
    the one the block saw at the training size `tlc_train_size` (its level's `stride`
    tells which; see ``tlc_window``); in training mode and below that size it pools
    globally. The parameters are NAFBlock's."""

    def __init__(
        self, c: int, dw_expand: int = 2, ffn_expand: int = 2, dropout: float = 0.0, *, tlc_train_size: int, stride: int
    ) -> None:
        super().__init__(c, dw_expand, ffn_expand, dropout)
        self.tlc_train_size = tlc_train_size
        self.stride = stride  # input pixels per feature pixel at this block's level (TLC's window)

    def extra_repr(self) -> str:
        return f"tlc_train_size={self.tlc_train_size}, stride={self.stride}"

    def attention(self, y: torch.Tensor) -> torch.Tensor:
        if not self.training:
            window = tlc_window(y.shape[-2], y.shape[-1], self.stride, self.tlc_train_size)
            if window is not None:
                return self.sca[1](local_mean(y, *window))
        return self.sca(y)


@BLOCKS.register("naf")
class NAF(BlockFamily):
    symbol = "circle"  # plotly marker on the dashboard
    # tlc: NAFNetLocal's local pooling at inference; train_size: the (square) training crop
    defaults = {"dw_expand": 2, "ffn_expand": 2, "dropout": 0.0, "tlc": False, "train_size": 256}
    optional = {"tlc": False, "train_size": 256}  # left out of the canonical JSON at these values
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
        if not 8 <= params["train_size"] <= 65536:
            raise SpecError("block.train_size", params["train_size"], "an integer 8-65536 (the training crop size, for tlc)")

    @classmethod
    def validate(cls, spec) -> None:
        super().validate(spec)
        if spec.block["tlc"] and spec.spatial_dims != 2:
            raise SpecError("block.tlc", True, "false for volumes", "TLC's local mean is written for images")

    @classmethod
    def module(cls, params: dict[str, Any]) -> type[nn.Module]:
        return NAFLocalBlock if params["tlc"] else NAFBlock

    @classmethod
    def arguments(cls, c_in: Any, c_out: Any, params: dict[str, Any], stride: Any = 1) -> dict[str, Any]:
        args = {"c": c_out, "dw_expand": params["dw_expand"], "ffn_expand": params["ffn_expand"], "dropout": params["dropout"]}
        if params["tlc"]:  # only TLC looks at the level's stride
            args.update(tlc_train_size=params["train_size"], stride=stride)
        return args
