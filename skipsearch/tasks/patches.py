"""Random training patches from whole cases, with foreground oversampling (as nnU-Net).

Each batch element takes a case at random. The last `round(batch x foreground)` elements
of a batch are centred on a voxel of a foreground class (a class the case has, chosen
uniformly, then one of its cached voxels), the others are placed uniformly. A case
smaller than the patch along an axis is padded there, the image with 0 (the mean after
z-scoring) and the label with 0 (background), and a patch may then reach into the
padding, as in nnU-Net's data loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from .base import Batch


def crop(array: np.ndarray, lower: Sequence[int], patch: Sequence[int], transform: Callable | None = None) -> np.ndarray:
    """array[..., lower : lower + patch] over the last len(patch) axes, zero outside the
    array; `transform` maps the part inside (e.g. normalises it) before it is placed."""
    lead = array.shape[: array.ndim - len(patch)]
    src, dst = [], []
    for lo, p, n in zip(lower, patch, array.shape[len(lead) :], strict=True):
        a, b = max(lo, 0), min(lo + p, n)
        src.append(slice(a, max(a, b)))
        dst.append(slice(a - lo, a - lo + max(0, b - a)))
    inside = np.asarray(array[(..., *src)])
    if transform is not None:
        inside = transform(inside)
    out = np.zeros((*lead, *patch), dtype=inside.dtype)
    out[(..., *dst)] = inside
    return out


def corner(shape: Sequence[int], patch: Sequence[int], rng: np.random.Generator, centre: Sequence[int] | None) -> list[int]:
    """The lower corner of a patch in a case of `shape`: uniform over the placements that
    keep the patch inside the case padded to the patch size, or (centre given) the one
    that centres it on that voxel, as far as the lower bound allows."""
    need = [max(0, p - s) for p, s in zip(patch, shape, strict=True)]
    low = [-(n // 2) for n in need]
    high = [s + n // 2 + n % 2 - p for s, n, p in zip(shape, need, patch, strict=True)]
    if centre is None:
        return [int(rng.integers(lo, hi + 1)) for lo, hi in zip(low, high, strict=True)]
    return [max(lo, int(v) - p // 2) for lo, v, p in zip(low, centre, patch, strict=True)]


def forced_from(batch: int, foreground: float) -> int:
    """Batch elements from this index on are centred on foreground."""
    return round(batch * (1 - foreground))


def stream(cases, indices: Sequence[int], patch: tuple[int, ...], batch: int, seed: int, foreground: float) -> Iterator[Batch]:
    """Endless batches of (image patches (N, C, *patch) float32, label patches (N, *patch) int64)
    from `cases` (raw_cache.Cached), drawing from the cases numbered `indices`."""
    rng = np.random.default_rng(seed)
    first = forced_from(batch, foreground)
    while True:
        xs, ys = [], []
        for j in range(batch):
            i = int(indices[rng.integers(len(indices))])
            image, label, locs = cases.array(i, "image"), cases.array(i, "label"), cases.array(i, "locs")
            centre = None
            if j >= first and len(locs):
                cls = rng.choice(cases.cases[i]["classes"])  # the classes it has, sorted (meta.json)
                rows = locs[locs[:, 0] == cls]
                centre = rows[rng.integers(len(rows)), 1:]
            lower = corner(label.shape, patch, rng, centre)
            xs.append(crop(image, lower, patch, lambda part, i=i: cases.normalise(i, part)))
            ys.append(crop(label, lower, patch))
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)).long()
