"""`nnunet-raw`: segmentation of a dataset in nnU-Net v2's raw layout.

Volumes (file_ending .nii.gz or .nii) make a 3-D task, images (.png, .bmp) a 2-D one;
the channels and classes come from dataset.json. Training draws random patches of the
budget's size with foreground oversampling (patches.py); validation scores each
validation case whole, by Gaussian-weighted sliding-window inference at the budget's
size (sliding.py), with Dice per class beside the task's metrics.

The split is nnU-Net's: `fold` 0-4 of its five-fold split of the sorted case names
(shuffled with seed 12345, as nnU-Net's default splits_final.json), or `split`, a file
naming the validation cases (one per line) or nnU-Net's splits_final.json itself (its
entry `fold`).

Memory: the cases are decoded once into a disk cache (raw_cache.py; 4 C + 1 bytes per
voxel on disk) and read memory-mapped, so training holds one batch of patches; scoring
holds one whole validation case at a time (its image, label, logits and weights), which
`data_footprint` reports for the largest one. Left out of nnU-Net's pipeline: resampling
to a common spacing, cropping to the non-zero region, data augmentation and mirrored
inference.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from . import patches, raw_cache
from .base import TASKS, Batch, Cases, Task, check_int
from .raw_layout import Layout, read_layout

FOLDS = 5
SPLIT_SEED = 12345  # nnU-Net's default five-fold split


def nnunet_folds(names: list[str]) -> list[list[str]]:
    """The validation cases of each of nnU-Net's five folds: the sorted names shuffled by a
    NumPy RandomState(12345), cut into five runs, the first n % 5 one longer."""
    keys = sorted(names)
    order = np.arange(len(keys))
    np.random.RandomState(SPLIT_SEED).shuffle(order)
    sizes = [len(keys) // FOLDS + (1 if f < len(keys) % FOLDS else 0) for f in range(FOLDS)]
    starts = np.cumsum([0, *sizes])
    return [sorted(keys[i] for i in order[starts[f] : starts[f + 1]]) for f in range(FOLDS)]


class _ValCases(Cases):
    def __init__(self, task: NnunetRaw, indices: list[int]) -> None:
        self.task, self.indices = task, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Batch:
        cached, i = self.task.cached(), self.indices[k]
        image = cached.normalise(i, np.asarray(cached.array(i, "image")))
        return torch.from_numpy(image), torch.from_numpy(np.array(cached.array(i, "label"))).long()


@TASKS.register("nnunet-raw")
class NnunetRaw(Task):
    kind = "seg"

    def __init__(
        self,
        data: str | Path | None = None,
        fold: int = 0,
        split: str | None = None,
        foreground: float = 0.33,
        cache: str | Path | None = None,
    ) -> None:
        if data is None:
            raise UserError("task nnunet-raw: option data is required (a folder with dataset.json, imagesTr/, labelsTr/)")
        self.fold = check_int(self.name, "fold", fold, 0)
        if self.fold >= FOLDS:
            raise UserError(f"task {self.name!r} option fold: {fold!r}; allowed: 0-{FOLDS - 1} (nnU-Net's five folds)")
        ok = isinstance(foreground, int | float) and not isinstance(foreground, bool) and 0 <= foreground <= 1
        if not ok:
            raise UserError(f"task {self.name!r} option foreground: {foreground!r}; allowed: the fraction of each batch, 0-1")
        self.foreground = float(foreground)
        if split is not None and (not isinstance(split, str | Path) or not str(split) or "\0" in str(split)):
            raise UserError(f"task {self.name!r} option split: {split!r}; allowed: a file naming the validation cases")
        if cache is not None and (not isinstance(cache, str | Path) or not str(cache) or Path(cache).is_file()):
            raise UserError(f"task {self.name!r} option cache: {cache!r}; allowed: a folder for the decoded cases")
        self.cache_folder = Path(cache) if cache is not None else raw_cache.default_folder()
        self.layout: Layout = read_layout(data)
        self.spatial_dims = self.layout.spatial_dims
        self.in_channels = len(self.layout.channels)
        self.num_classes = len(self.layout.labels)
        self.class_names = self.layout.labels
        names = [c.name for c in self.layout.cases]
        val = set(self._val_names(names, split))
        self.val_indices = [i for i, n in enumerate(names) if n in val]
        self.train_indices = [i for i, n in enumerate(names) if n not in val]
        if not self.val_indices or not self.train_indices:
            side = "validation" if not self.val_indices else "training"
            raise UserError(f"{split or self.layout.root}: the split leaves no {side} cases; allowed: at least one on each side")
        self._built = False

    def _val_names(self, names: list[str], split: str | None) -> list[str]:
        if split is None:
            if len(names) < FOLDS:
                raise UserError(
                    f"{self.layout.root}: nnU-Net's five-fold split needs at least {FOLDS} cases, the dataset has "
                    f"{len(names)}; allowed: task option split=FILE naming the validation cases"
                )
            return nnunet_folds(names)[self.fold]
        from ..files import read_text

        path = Path(split)
        text = read_text(path, "split")
        lines = [s.strip() for s in text.splitlines() if s.strip()]
        wanted = self._json_split(path, text) if path.suffix == ".json" else lines
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise UserError(f"{path}: case {unknown[0]!r} is not a case of {self.layout.root}; allowed: the names in labelsTr/")
        return wanted

    def _json_split(self, path: Path, text: str) -> list[str]:
        """splits_final.json: a list of {"train": [...], "val": [...]}, one per fold."""
        try:
            folds = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not valid JSON ({err})") from None
        ok = isinstance(folds, list) and all(isinstance(f, dict) and isinstance(f.get("val"), list) for f in folds)
        if not ok or self.fold >= len(folds):
            raise UserError(
                f"{path}: allowed: nnU-Net's splits_final.json, a list of {{'train': [...], 'val': [...]}} with an entry "
                f"for fold {self.fold}"
            )
        return [str(v) for v in folds[self.fold]["val"]]

    # -- data -------------------------------------------------------------------------
    @functools.cache  # noqa: B019 - one task object, one cache
    def cached(self) -> raw_cache.Cached:
        folder, self._built = raw_cache.build(self.layout, self.cache_folder)
        return raw_cache.Cached(folder)

    def check(self, size: tuple[int, ...]) -> None:
        """Decode every case now (into the cache), so a bad file fails before training."""
        self.cached()

    def train_batches(self, size: tuple[int, ...], batch: int, seed: int) -> Iterator[Batch]:
        return patches.stream(self.cached(), self.train_indices, tuple(size), batch, seed, self.foreground)

    def val_set(self, size: tuple[int, ...]) -> Cases:
        return _ValCases(self, self.val_indices)

    def data_footprint(self, size: tuple[int, ...]) -> tuple[int, str]:
        cases = self.layout.cases
        largest = max(self.val_indices, key=lambda i: math.prod(cases[i].shape))
        shape = tuple(max(s, p) for s, p in zip(cases[largest].shape, size, strict=False))
        voxels = math.prod(shape)
        # image + normalised copy, int64 label, logits and summed weights
        need = voxels * (8 * self.in_channels + 8 + 4 * self.out_channels + 4)
        disk = raw_cache.amount(raw_cache.disk_bytes(self.layout))
        what = (
            f"the largest validation case, {'x'.join(map(str, cases[largest].shape))}, scored whole; "
            f"{len(cases)} cases memory-mapped from a {disk} disk cache"
        )
        return need, what

    def notes(self, size: tuple[int, ...]) -> list[str]:
        lines = []
        if self._built:
            disk = raw_cache.amount(raw_cache.disk_bytes(self.layout))
            lines.append(f"decoded {len(self.layout.cases)} cases into {self.cached().folder} "
                         f"({disk}; made once per dataset version)")  # fmt: skip
        small = [c for c in self.layout.cases if any(s < p for s, p in zip(c.shape, size, strict=False))]
        if small:
            smallest = min(small, key=lambda c: math.prod(c.shape))
            lines.append(
                f"{len(small)} of {len(self.layout.cases)} cases are smaller than the patch {'x'.join(map(str, size))} "
                f"along some axis (smallest: {smallest.name}, {'x'.join(map(str, smallest.shape))}): they are padded "
                "with zeros (label: background)"
            )
        return lines

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "data": str(self.layout.root),
            "fold": self.fold,
            "train": len(self.train_indices),
            "val": len(self.val_indices),
            "channels": list(self.layout.channels),
            "labels": list(self.layout.labels),
        }
