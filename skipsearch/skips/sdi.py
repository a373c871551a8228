"""U-Net v2's SDI (Peng et al., 2023): semantics and detail infusion.

Each E_l is refined at once by CBAM-style channel then spatial attention and reduced to
c channels by a 1x1 conv + BN (f_l); E_l itself is not kept. When the decoder asks for
level l, every f_j is resized to level l (adaptive average pooling when larger, bilinear
with align_corners when smaller), smoothed by its own 3x3 conv and all are multiplied
(Hadamard product). SDI outputs are computed lazily, one per decoder level, so only the
f_j set is held. Where c differs from the level width a 1x1 projection follows (our
adaptation for decoders wider than c). Non-square inputs resize to the true H x W.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecError
from ..layers import nd, projection
from .base import SKIPS, Sizes, SkipDesign, State, Timeline, area, merge, resolve_merge, stages


class ChannelAttention(nn.Module):
    def __init__(self, c: int, dims: int = 2) -> None:
        super().__init__()
        hidden = max(1, c // 16)  # U-Net v2 hard-wires C/16; narrow levels keep one unit
        conv = nd("Conv", dims)
        self.mlp = nn.Sequential(conv(c, hidden, 1, bias=False), nn.ReLU(), conv(hidden, c, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = (1,) * (x.dim() - 2)
        w = self.mlp(_pool(x, "avg", ones)) + self.mlp(_pool(x, "max", ones))
        return x * torch.sigmoid(w)


class SpatialAttention(nn.Module):
    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        self.conv = nd("Conv", dims)(2, 1, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


def _pool(x: torch.Tensor, kind: str, size: tuple[int, ...]) -> torch.Tensor:
    """Adaptive average or max pooling of an image (2-D) or a volume (3-D) to `size`."""
    return getattr(F, f"adaptive_{kind}_pool{x.dim() - 2}d")(x, size)


def _resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(x.shape[2:]) == size:
        return x
    if x.shape[-1] > size[-1]:
        return _pool(x, "avg", size)
    return F.interpolate(x, size=size, mode="bilinear" if x.dim() == 4 else "trilinear", align_corners=True)


@SKIPS.register("sdi")
class Sdi(SkipDesign):
    color = "#2ca02c"  # on the dashboard
    defaults = {"channels": 32, "merge": "auto"}

    @classmethod
    def resolve(cls, params: dict[str, Any], spec) -> dict[str, Any]:
        if not 1 <= params["channels"] <= 4096:
            raise SpecError("skip.channels", params["channels"], "an integer 1-4096")
        return resolve_merge(params, spec)

    @classmethod
    def arguments(cls, spec, stage, up) -> dict[str, Any]:
        return {"widths": list(spec.level_widths[:-1]), "channels": spec.skip["channels"], "merge": spec.skip["merge"]}

    def __init__(self, widths: list[int], channels: int, merge: str, dims: int = 2) -> None:
        super().__init__()
        c, d, ws = channels, len(widths), widths
        conv = nd("Conv", dims)
        self.merge, self.widths = merge, ws
        self.refine = nn.ModuleList(
            nn.Sequential(
                ChannelAttention(ws[i], dims), SpatialAttention(dims), conv(ws[i], c, 1, bias=False), nd("BatchNorm", dims)(c)
            )
            for i in range(d)
        )
        self.smooth = nn.ModuleList(nn.ModuleList(conv(c, c, 3, padding=1) for _ in range(d)) for _ in range(d))
        self.project = nn.ModuleList(projection(c, ws[i], dims) for i in range(d))

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        state[level] = self.refine[level - 1](feat)

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        size = tuple(state[level].shape[2:])
        out = None
        for j, conv in enumerate(self.smooth[level - 1]):
            term = conv(_resize(state[j + 1], size))
            out = term if out is None else out * term
        if level == 1:
            state.clear()  # the last decoder level: the f_j set is no longer needed
        return merge(self.merge, up, self.project[level - 1](out))

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels if self.merge == "add" else up_channels + self.widths[level - 1]

    @classmethod
    def analytic(cls, spec, sizes: Sizes) -> Timeline:
        c, d = spec.skip["channels"], spec.depth
        out = []
        for kind, level in stages(d):
            kept = range(1, level + 1) if kind == "encoder" else range(1, d + 1)
            out.append({} if kind == "decoder" and level == 1 else {f"L{i}": c * area(sizes, i) for i in kept})
        return out
