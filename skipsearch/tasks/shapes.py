"""`shapes`: procedural binary segmentation, generated on the fly at any size.

Each image has irregular, soft-edged lesion-like blobs on a textured, shaded background,
with noise and blur. The label is the LARGEST blob only; the others are look-alikes of
the same colour and texture, at most half its radius. Telling them apart needs context
the size of the blob (the global path of a U-Net), while the spiky outline and the small
holes at random places inside each blob (background, excluded from the label) are
pixel-level detail that coarse features cannot predict (what skips carry). Image i of a seed is always the same
image: a NumPy generator seeded with (seed, i).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .base import TASKS, Batch, Task, check_int

VAL_OFFSET = 1_000_000  # validation images never share an index with training ones


def _blob(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, cx: float, cy: float, r0: float) -> np.ndarray:
    """Signed radial distance to an irregular outline: negative inside."""
    dy, dx = yy - cy, xx - cx
    rho = np.hypot(dy, dx)
    unit = (dx + 1j * dy) / np.maximum(rho, 1e-9)  # e^{i theta}; harmonics by repeated products
    k = np.arange(2, 25)
    amp = rng.uniform(0, 1, k.size) * 0.28 / k**0.7  # rough, with fine high-frequency wiggles
    phase = np.exp(1j * rng.uniform(0, 2 * np.pi, k.size))
    wiggle = np.zeros_like(rho)
    power = unit
    for i in range(1, k[-1]):
        power = power * unit
        if i + 1 >= k[0]:
            j = i + 1 - k[0]
            wiggle += amp[j] * (power * phase[j]).imag
    return rho - r0 * (1 + wiggle)


def _holes(rng, yy, xx, cx, cy, r0, softness) -> np.ndarray:
    """Small round gaps showing the background, at random places inside a blob: pixel-level
    detail that coarse features cannot predict (and the label excludes)."""
    out = np.zeros_like(yy)
    for _ in range(rng.integers(3, 9)):
        radius = r0 * rng.uniform(0.12, 0.2)
        dist, angle = rng.uniform(0, 0.7 * r0), rng.uniform(0, 2 * np.pi)
        hx, hy = cx + dist * np.cos(angle), cy + dist * np.sin(angle)
        d = np.hypot(yy - hy, xx - hx) - radius
        out = np.maximum(out, 1 / (1 + np.exp(np.clip(d / softness, -50, 50))))
    return out


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise: a coarse random grid, bilinearly upsampled."""
    grid = rng.standard_normal((cells + 1, cells + 1))
    gy, gx = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(gy.astype(int), cells - 1), np.minimum(gx.astype(int), cells - 1)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def render(index: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image (3, h, w) float32 in [0, 1] and mask (h, w) uint8 of sample `index`."""
    rng = np.random.default_rng([seed, index])
    scale = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) / scale
    base = rng.uniform(0.3, 0.7, 3)
    shade = 0.12 * _smooth_noise(rng, h, w, 3)
    texture = 0.05 * _smooth_noise(rng, h, w, max(4, scale // 6))
    img = base[:, None, None] + shade + texture
    tint = rng.uniform(-0.35, 0.35, 3)
    tint *= 0.25 / max(np.abs(tint).max(), 1e-6)  # a visible but not trivial colour shift
    r0 = rng.uniform(0.14, 0.24)
    cx, cy = rng.uniform(r0 + 0.02, w / scale - r0 - 0.02), rng.uniform(r0 + 0.02, h / scale - r0 - 0.02)
    placed = [(cx, cy, r0)]
    for _ in range(rng.integers(1, 4)):  # look-alike distractors, at most half the radius
        r = r0 * rng.uniform(0.25, 0.5)
        for _try in range(20):
            px, py = rng.uniform(r, w / scale - r), rng.uniform(r, h / scale - r)
            if all(np.hypot(px - qx, py - qy) > 1.35 * (r + qr) for qx, qy, qr in placed):
                placed.append((px, py, r))
                break
    softness = 0.7 / scale
    lesion = np.zeros((h, w), dtype=bool)
    for i, (px, py, r) in enumerate(placed):
        # work in the blob's bounding box: the outline stays within 2.4 r of its centre
        reach = 2.4 * r + 10 * softness
        y0, y1 = max(0, int((py - reach) * scale)), min(h, int((py + reach) * scale) + 1)
        x0, x1 = max(0, int((px - reach) * scale)), min(w, int((px + reach) * scale) + 1)
        box = (slice(y0, y1), slice(x0, x1))
        sd = _blob(rng, yy[box], xx[box], px, py, r)
        inside = 1 / (1 + np.exp(np.clip(sd / softness, -50, 50)))
        holes = _holes(rng, yy[box], xx[box], px, py, r, softness)
        alpha = inside * (1 - holes)
        inner = tint + 0.04 * rng.standard_normal(3)
        detail = 0.06 * _smooth_noise(rng, y1 - y0, x1 - x0, max(2, 12 * (y1 - y0) // h))
        patch = img[(slice(None), *box)]
        img[(slice(None), *box)] = patch * (1 - alpha) + (patch + inner[:, None, None] + detail) * alpha
        if i == 0:
            lesion[box] = (sd < 0) & (holes < 0.5)
    img = np.stack([gaussian_filter(c, rng.uniform(0.3, 0.6), mode="nearest") for c in img])
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(img, 0, 1).astype(np.float32), lesion.astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _pool(seed: int, h: int, w: int, start: int, n: int) -> Batch:
    samples = [render(start + i, h, w, seed) for i in range(n)]
    x = torch.from_numpy(np.stack([s[0] for s in samples]))
    y = torch.from_numpy(np.stack([s[1] for s in samples])).long()
    return x, y


@TASKS.register("shapes")
class Shapes(Task):
    kind = "seg"
    samples = "images"  # what one example is called in messages
    pool = staticmethod(_pool)  # (seed, *sides, start, n) -> the rendered examples

    def __init__(self, train_samples: int = 1000, val_samples: int = 200, seed: int = 0) -> None:
        self.train_samples = check_int(self.name, "train_samples", train_samples, 1)
        self.val_samples = check_int(self.name, "val_samples", val_samples, 1)
        self.seed = check_int(self.name, "seed", seed, 0)

    def train_pool(self, size: tuple[int, ...], seed: int) -> Batch:
        return self.pool(self.seed, *size, 0, self.train_samples)

    def val_set(self, size: tuple[int, ...]) -> Batch:
        return self.pool(self.seed, *size, VAL_OFFSET, self.val_samples)

    def data_footprint(self, size: tuple[int, ...]) -> tuple[int, str]:
        n = self.train_samples + self.val_samples
        what = f"{self.train_samples} training + {self.val_samples} validation {self.samples}"
        return self._pairs_bytes(n, size), what

    def describe(self) -> dict:
        return {**super().describe(), "train_samples": self.train_samples, "val_samples": self.val_samples, "seed": self.seed}
