"""Training memory: the peak bytes of one training step (forward, backward, optimizer step).

The step is train.train_step itself, run twice on the same model: the first creates the
optimizer's state, as the first step of training does; the second is measured under the
live-storage tracker (tracker.py), which sees every storage the step allocates and frees.
The peak adds what lives through the whole step: weights, buffers, the optimizer's state
and the batch. On the meta device this is a prediction in milliseconds; on real CPU tensors
the same code measures what the kernels allocate, and the two agree to the byte (tests). On
CUDA, foreach optimizer kernels and the caching allocator's rounding add to it.

The breakdown is read at the peak moment (the tracker numbers each storage's birth): the
gradients already accumulated then, and the rest (tensors autograd saved for backward,
temporaries, the batch) as activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..spec import ArchSpec
from .tracker import LiveStorages


@dataclass(frozen=True)
class TrainMemory:
    peak_bytes: int  # everything live at the step's peak
    weights: int  # parameters and buffers
    gradients: int  # gradients live at the peak
    optimizer: int  # the optimizer's state (AdamW: two moments and a step count per parameter)
    activations: int  # the rest at the peak: the batch, saved tensors, temporaries
    batch: int
    size: tuple[int, int]
    device: str
    checkpoint: bool = False  # levels recomputed in backward

    def to_dict(self) -> dict[str, Any]:
        """`train_peak_bytes` and, under `train`, the breakdown at the peak and the setting."""
        parts = {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer}
        setting = {"batch": self.batch, "size": list(self.size), "device": self.device, "checkpoint": self.checkpoint}
        return {
            "train_peak_bytes": self.peak_bytes,
            "train": {"breakdown": {**parts, "activations": self.activations}, **setting},
        }


def _nbytes(tensors) -> int:
    return sum(t.untyped_storage().nbytes() for t in {t.untyped_storage()._cdata: t for t in tensors}.values())


@dataclass(frozen=True)
class _Loss:
    """The loss a task of the spec's head trains with (the Task classes' own rule): PSNR
    for a restore head, BCE + Dice for one output channel, CE + Dice for several."""

    kind: str
    out_channels: int

    @property
    def num_classes(self) -> int:
        return 2 if self.out_channels == 1 else self.out_channels

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from ..tasks import losses

        if self.kind == "restore":
            return losses.psnr_loss(out, target)
        return losses.bce_dice(out, target) if self.out_channels == 1 else losses.ce_dice(out, target)

    def target(self, batch: int, size: tuple[int, int], device: str) -> torch.Tensor:
        """A target of the right shape and dtype (its values do not change the memory)."""
        if self.kind == "restore":
            return torch.zeros((batch, self.out_channels, *size), device=device)
        return torch.zeros((batch, *size), dtype=torch.long, device=device)


def train_memory(spec: ArchSpec, budget, device: str = "meta") -> TrainMemory:
    """The peak bytes of one training step of `spec` at the budget's batch and size (the
    optimizer, betas, clipping and precision of `budget`), on `device`: "meta" predicts,
    "cpu" measures with real tensors."""
    from ..model import build_model
    from ..train import _optimizer, train_step
    from .memory import _warm_up, gc_paused

    _warm_up()
    size = tuple(int(s) for s in budget.size)
    size = tuple(-(-s // spec.multiple) * spec.multiple for s in size)  # the padded size it trains at
    model = (build_model(spec, "meta") if device == "meta" else build_model(spec).to(device)).train()
    model.checkpointing = budget.checkpoint
    task = _Loss("restore" if spec.head == "restore" else "seg", spec.out_channels)
    opt = _optimizer(model, task, budget)
    make = torch.empty if device == "meta" else torch.randn
    x = make((budget.batch, spec.in_channels, *size), device=device)
    y = task.target(budget.batch, size, device)
    with gc_paused():
        train_step(model, opt, task, x, y, budget)  # creates the optimizer state
        state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
        weights = _nbytes([*model.parameters(), *model.buffers()])
        keep = [*model.parameters(), *model.buffers(), *state, x, y]
        with LiveStorages(keep) as mode:
            train_step(model, opt, task, x, y, budget)
        grads = {p.grad.untyped_storage()._cdata for p in model.parameters() if p.grad is not None}
        at_peak = sum(mode.sizes.get(k, 0) for k in grads if mode.born.get(k, 1 << 62) <= mode.peak_birth)
    optimizer = _nbytes(state)
    batch_bytes = x.untyped_storage().nbytes() + y.untyped_storage().nbytes()
    peak = weights + optimizer + batch_bytes + mode.peak
    activations = peak - weights - optimizer - at_peak
    return TrainMemory(peak, weights, at_peak, optimizer, activations, budget.batch, size, device, budget.checkpoint)
