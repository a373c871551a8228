"""Shared primitives: channel LayerNorm, SimpleGate, interpolation, projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of each pixel (NAFNet's LayerNorm2d, eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split channels into contiguous halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class Interpolate(nn.Module):
    """x2 resize by interpolation (channels unchanged)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = False if self.mode in ("bilinear", "bicubic") else None
        return F.interpolate(x, scale_factor=2, mode=self.mode, align_corners=corners)


def projection(c_in: int, c_out: int) -> nn.Module:
    """1x1 conv used where channel counts must be reconciled (identity when equal)."""
    return nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)
