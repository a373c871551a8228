"""`shapes3d`: procedural binary segmentation of volumes, generated at any size.

The volume counterpart of `shapes`: one channel (as CT or MR), a shaded, textured
background, a lumpy lesion-like blob with small background-filled cavities, and 1-3
look-alike blobs at most half its radius. The label is the LARGEST blob without its
cavities: telling it from the look-alikes needs context the size of the blob, the rough
outline and the cavities are voxel-level detail. Volume i of a seed is always the same
volume (a NumPy generator seeded with (seed, i)).

Memory: the volumes are generated once per (size, count) and kept decoded in memory,
float32 image plus int64 label: 12 bytes per voxel (a 64^3 volume: 3 MiB; 200 of them
at 64^3: 600 MiB), which `data_footprint` reports before training.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, zoom

from .base import TASKS, Batch
from .shapes import Shapes


def _noise(rng: np.random.Generator, shape: tuple[int, int, int], cells: int) -> np.ndarray:
    """Smooth value noise: a coarse random grid, trilinearly upsampled to `shape`."""
    grid = rng.standard_normal((cells + 1,) * 3)
    out = zoom(grid, [s / (cells + 1) for s in shape], order=1, mode="nearest")
    return out[: shape[0], : shape[1], : shape[2]]


def _blob(rng, grid, centre, r0: float, softness: float) -> tuple[np.ndarray, np.ndarray]:
    """(soft inside, signed distance) of a lumpy blob: its radius modulated by smooth
    noise over direction, so the outline is rough at several scales."""
    d = [g - c for g, c in zip(grid, centre, strict=True)]
    rho = np.sqrt(sum(x * x for x in d))
    lumps = np.zeros_like(rho)
    for k, a in ((2, 0.18), (4, 0.09), (7, 0.05)):  # low to high angular frequency
        axis = rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        cos = sum(x * u for x, u in zip(d, axis, strict=True)) / np.maximum(rho, 1e-9)
        lumps += a * rng.uniform(0.5, 1) * np.cos(k * np.arccos(np.clip(cos, -1, 1)) + rng.uniform(0, 2 * np.pi))
    sd = rho - r0 * (1 + lumps)
    return 1 / (1 + np.exp(np.clip(sd / softness, -50, 50))), sd


def render(index: int, d: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Volume (1, d, h, w) float32 in [0, 1] and mask (d, h, w) uint8 of sample `index`."""
    rng = np.random.default_rng([seed, index, 3])
    shape = (d, h, w)
    scale = max(shape)
    grid = np.meshgrid(*[np.arange(s, dtype=np.float64) / scale for s in shape], indexing="ij")
    img = rng.uniform(0.3, 0.6) + 0.1 * _noise(rng, shape, 3) + 0.04 * _noise(rng, shape, max(4, scale // 6))
    extent = [s / scale for s in shape]
    r0 = rng.uniform(0.16, 0.26) * min(extent)
    placed = [(tuple(rng.uniform(r0 + 0.02, e - r0 - 0.02) for e in extent), r0)]
    for _ in range(rng.integers(1, 4)):  # look-alikes, at most half the radius
        r = r0 * rng.uniform(0.3, 0.5)
        for _try in range(20):
            c = tuple(rng.uniform(r, e - r) for e in extent)
            if all(np.linalg.norm(np.subtract(c, q)) > 1.35 * (r + qr) for q, qr in placed):
                placed.append((c, r))
                break
    softness = 0.7 / scale
    tint = rng.choice([-1, 1]) * rng.uniform(0.18, 0.28)
    lesion = np.zeros(shape, dtype=bool)
    for i, (c, r) in enumerate(placed):
        inside, sd = _blob(rng, grid, c, r, softness)
        cavities = np.zeros(shape)
        for _ in range(rng.integers(2, 6)):  # small background-filled holes inside the blob
            offset = rng.standard_normal(3)
            hole = np.add(c, offset / np.linalg.norm(offset) * rng.uniform(0, 0.6 * r))
            dist = np.sqrt(sum((g - x) ** 2 for g, x in zip(grid, hole, strict=True))) - r * rng.uniform(0.15, 0.25)
            cavities = np.maximum(cavities, 1 / (1 + np.exp(np.clip(dist / softness, -50, 50))))
        alpha = inside * (1 - cavities)
        img = img * (1 - alpha) + (img + tint + 0.05 * _noise(rng, shape, max(2, scale // 8))) * alpha
        if i == 0:
            lesion = (sd < 0) & (cavities < 0.5)
    img = gaussian_filter(img, rng.uniform(0.3, 0.6), mode="nearest") + rng.normal(0, 0.03, shape)
    return np.clip(img, 0, 1).astype(np.float32)[None], lesion.astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _pool(seed: int, d: int, h: int, w: int, start: int, n: int) -> Batch:
    samples = [render(start + i, d, h, w, seed) for i in range(n)]
    x = torch.from_numpy(np.stack([s[0] for s in samples]))
    y = torch.from_numpy(np.stack([s[1] for s in samples])).long()
    return x, y


@TASKS.register("shapes3d")
class Shapes3d(Shapes):
    """`shapes` in volumes: the same options and data handling, its own renderer."""

    spatial_dims = 3
    in_channels = 1
    samples = "volumes"
    pool = staticmethod(_pool)

    def __init__(self, train_samples: int = 100, val_samples: int = 20, seed: int = 0) -> None:
        super().__init__(train_samples, val_samples, seed)
