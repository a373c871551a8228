"""Shared primitives: channel LayerNorm, SimpleGate, interpolation, projections, and the
one seam for the number of spatial dimensions (2: images, 3: volumes): ``nd`` picks
torch's 2-D or 3-D module, and 3-D pixel (un)shuffle, which torch lacks, is here."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def nd(name: str, dims: int) -> type[nn.Module]:
    """torch's module `name` for `dims` spatial dimensions: nd("Conv", 3) is nn.Conv3d."""
    return getattr(nn, f"{name}{dims}d")


class _Factor(nn.Module):
    """A parameter-free module of one integer factor r (3-D pixel shuffle and its inverse)."""

    def __init__(self, r: int) -> None:
        super().__init__()
        self.r = r


class PixelShuffle3d(_Factor):
    """(N, C r^3, D, H, W) -> (N, C, D r, H r, W r): nn.PixelShuffle's channel order, one
    axis more (channel c r^3 + a r^2 + b r + e goes to offset (a, b, e) of its r^3 cell)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        r = self.r
        x = x.reshape(n, c // r**3, r, r, r, d, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(n, c // r**3, d * r, h * r, w * r)


class PixelUnshuffle3d(_Factor):
    """The exact inverse of PixelShuffle3d: (N, C, D r, H r, W r) -> (N, C r^3, D, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        r = self.r
        x = x.reshape(n, c, d // r, r, h // r, r, w // r, r).permute(0, 1, 3, 5, 7, 2, 4, 6)
        return x.reshape(n, c * r**3, d // r, h // r, w // r)


def pixel_shuffle(dims: int, r: int) -> nn.Module:
    return nn.PixelShuffle(r) if dims == 2 else PixelShuffle3d(r)


def pixel_unshuffle(dims: int, r: int) -> nn.Module:
    return nn.PixelUnshuffle(r) if dims == 2 else PixelUnshuffle3d(r)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of each pixel (NAFNet's LayerNorm2d, eps 1e-6); of
    each voxel for volumes (the name stays, so state_dict keys and exports do too)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self.weight.view(shape) * y + self.bias.view(shape)


class SimpleGate(nn.Module):
    """Split channels into contiguous halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class Interpolate(nn.Module):
    """x2 resize by interpolation (channels unchanged); "trilinear" resizes volumes."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = False if self.mode in ("bilinear", "bicubic", "trilinear") else None
        return F.interpolate(x, scale_factor=2, mode=self.mode, align_corners=corners)


def projection(c_in: int, c_out: int, dims: int = 2) -> nn.Module:
    """1x1 conv used where channel counts must be reconciled (identity when equal)."""
    return nn.Identity() if c_in == c_out else nd("Conv", dims)(c_in, c_out, 1)
