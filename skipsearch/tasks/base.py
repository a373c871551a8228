"""The task contract: data, loss and metrics for one kind of problem.

Images are float32 in [0, 1], (N, C, H, W). Segmentation labels are class indices
(N, H, W); restoration targets are images like the inputs. Datasets are decoded once
into memory at the training size, so batches are cheap tensor indexing and the model
is never waiting for a loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from ..errors import SpecError, UserError
from ..registry import Registry
from ..spec import ArchSpec
from . import losses, metrics

Batch = tuple[torch.Tensor, torch.Tensor]


class Cases:
    """Whole validation cases of their own shapes (volumes of a medical dataset): scored
    one at a time by sliding-window inference at the training size, not stacked.
    Subclasses give len() and case i as (image (C, *shape) float32, label (*shape) int64)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> Batch:
        raise NotImplementedError


class Task:
    name: ClassVar[str]
    kind: ClassVar[str]  # "seg" or "restore"
    spatial_dims: ClassVar[int] = 2  # 2: images; 3: volumes
    in_channels: int = 3
    num_classes: int = 2  # segmentation classes, background included
    class_names: tuple[str, ...] | None = None  # by class id: a multi-class task scores Dice per class as dice_NAME

    @property
    def out_channels(self) -> int:
        if self.kind == "restore":
            return self.in_channels
        return 1 if self.num_classes == 2 else self.num_classes

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("psnr", "ssim") if self.kind == "restore" else ("dice", "iou", "mdice", "miou")

    @property
    def primary(self) -> str:
        """The metric a study maximises by default."""
        return "psnr" if self.kind == "restore" else "dice"

    def describe(self) -> dict[str, Any]:
        return {"task": self.name, "kind": self.kind, "in_channels": self.in_channels, "num_classes": self.num_classes}

    # -- data ---------------------------------------------------------------------------
    def train_pool(self, size: tuple[int, int], seed: int) -> Batch:
        """All training examples at `size` (subclasses with unbounded data override
        ``train_batches`` instead)."""
        raise NotImplementedError

    def train_batches(self, size: tuple[int, int], batch: int, seed: int) -> Iterator[Batch]:
        """An endless, seeded stream of training batches (the data is prepared before this
        returns, so a timed loop only sees batching)."""
        x, y = self.train_pool(size, seed)
        g = torch.Generator().manual_seed(seed)

        def stream() -> Iterator[Batch]:
            while True:
                idx = torch.randint(len(x), (batch,), generator=g)
                yield x[idx], y[idx]

        return stream()

    def val_set(self, size: tuple[int, int]) -> Batch | Cases:
        raise NotImplementedError

    def notes(self, size: tuple[int, ...]) -> list[str]:
        """What a user should know once before training at `size` (e.g. cases padded to
        the patch size); printed once by `train` and `run`."""
        return []

    def data_footprint(self, size: tuple[int, int]) -> tuple[int, str] | None:
        """Bytes the decoded data takes in memory at `size`, and what it is (e.g. "1000
        training + 200 validation images"); None when small or unknown."""
        return None

    def _pairs_bytes(self, n: int, size: tuple[int, ...]) -> int:
        """n decoded examples at `size`: float32 images plus int64 labels (or float32 targets)."""
        target = 3 * 4 if self.kind == "restore" else 8
        return n * math.prod(size) * (self.in_channels * 4 + target)

    # -- objective ------------------------------------------------------------------------
    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "restore":
            return losses.psnr_loss(out, target)
        return losses.bce_dice(out, target) if self.num_classes == 2 else losses.ce_dice(out, target)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        if self.kind == "restore":
            return out.clamp(0, 1)
        return (out[:, 0] > 0).long() if self.num_classes == 2 else out.argmax(1)

    def score(self, out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image metrics of one batch of raw network outputs."""
        pred = self.predict(out.float())
        if self.kind == "restore":
            return {"psnr": metrics.psnr(pred, target), "ssim": metrics.ssim(pred, target)}
        return metrics.segmentation_metrics(pred, target, self.num_classes, self.class_names)

    # -- specs ----------------------------------------------------------------------------
    def adapt(self, spec: ArchSpec) -> ArchSpec:
        """The spec with the channels and head this task needs (SpecError for a spec of
        other dimensions: a volume network cannot be adapted to images, nor back)."""
        if spec.spatial_dims != self.spatial_dims:
            shapes = {2: "2-D images", 3: "3-D volumes"}
            raise SpecError(
                "spatial_dims",
                spec.spatial_dims,
                f"{self.spatial_dims} (task {self.name!r} has {shapes[self.spatial_dims]})",
            )
        head = "restore" if self.kind == "restore" else "seg"
        return spec.replace(in_channels=self.in_channels, out_channels=self.out_channels, head=head)

    def mismatch(self, spec: ArchSpec) -> str | None:
        """Why a spec cannot be trained on this task, or None."""
        want = self.adapt(spec)
        for field in ("in_channels", "out_channels", "head"):
            if getattr(spec, field) != getattr(want, field):
                return f"task {self.name!r} needs {field}={getattr(want, field)!r}, the spec has {getattr(spec, field)!r}"
        return None


TASKS: Registry[type[Task]] = Registry("task", "task")


def check_int(task: str, name: str, value: Any, low: int) -> int:
    """A task option that must be an integer >= low (UserError otherwise)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise UserError(f"task {task!r} option {name}: {value!r}; allowed: an integer >= {low}")
    return value


def check_number(task: str, name: str, value: Any, low: float, high: float) -> float:
    """A task option that must be a finite number with low < value <= high."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and low < value <= high
    if not ok:
        raise UserError(f"task {task!r} option {name}: {value!r}; allowed: a number with {low:g} < value <= {high:g}")
    return float(value)
