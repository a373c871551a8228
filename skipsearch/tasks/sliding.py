"""Sliding-window inference over a whole case, with Gaussian weighting (as nnU-Net).

Tiles of the patch size overlap by half (step 0.5 of the tile): along an axis of n voxels
and tile t, ceil((n - t) / (t / 2)) + 1 tiles, spread evenly from 0 to n - t. Each
tile's logits are weighted by a Gaussian centred on the tile (sigma = tile / 8 per axis,
scaled to 1 at the centre, its zeros raised to its smallest positive value), summed,
and divided by the summed weights: voxels near a tile's border, where the network sees
the least context, count least. A case smaller than the tile is padded to it (zeros,
split evenly before and after) and cropped back.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch


def steps(size: int, tile: int, step: float = 0.5) -> list[int]:
    """The tile start positions along one axis (size >= tile)."""
    n = math.ceil((size - tile) / (tile * step)) + 1
    if n == 1:
        return [0]
    stride = (size - tile) / (n - 1)
    return [int(round(stride * k)) for k in range(n)]


@functools.lru_cache(maxsize=8)
def gaussian(tile: tuple[int, ...], sigma_scale: float = 1 / 8) -> torch.Tensor:
    """The importance map of one tile, float32, 1 at the centre, no zeros."""
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros(tile)
    impulse[tuple(t // 2 for t in tile)] = 1
    g = gaussian_filter(impulse, [t * sigma_scale for t in tile], mode="constant", cval=0)
    g = g / g.max()
    g[g == 0] = g[g > 0].min()
    return torch.from_numpy(g.astype(np.float32))


@torch.no_grad()
def predict(model: torch.nn.Module, image: torch.Tensor, tile: Sequence[int], batch: int, autocast: bool = False) -> torch.Tensor:
    """Logits (K, *shape) of `image` (C, *shape) on the model's device, tile by tile."""
    tile = tuple(int(t) for t in tile)
    device = next(model.parameters()).device
    shape = tuple(image.shape[1:])
    pad = [max(0, t - s) for t, s in zip(tile, shape, strict=True)]
    if any(pad):  # F.pad takes the last axis first
        widths = [w for p in reversed(pad) for w in (p // 2, p - p // 2)]
        image = torch.nn.functional.pad(image, widths)
    padded = tuple(image.shape[1:])
    corners = [tuple(c) for c in np.stack(np.meshgrid(*[steps(s, t) for s, t in zip(padded, tile, strict=True)],
                                                        indexing="ij"), -1).reshape(-1, len(tile)).tolist()]  # fmt: skip
    weight = gaussian(tile).to(device)
    logits, total = None, torch.zeros(padded, device=device)
    for k in range(0, len(corners), batch):
        group = corners[k : k + batch]
        boxes = [tuple(slice(c, c + t) for c, t in zip(lower, tile, strict=True)) for lower in group]
        x = torch.stack([image[(slice(None), *b)] for b in boxes]).to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
            out = model(x).float()
        if logits is None:
            logits = torch.zeros((out.shape[1], *padded), device=device)
        for o, b in zip(out, boxes, strict=True):
            logits[(slice(None), *b)] += o * weight
            total[b] += weight
    logits /= total
    crop = tuple(slice(p // 2, p // 2 + s) for p, s in zip(pad, shape, strict=True))
    return logits[(slice(None), *crop)]
