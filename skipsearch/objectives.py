"""The objective catalogue: every figure a study can optimise or constrain, as one record.

A record says what the figure is called, which way is better, its unit, when it is known
and how it is computed and shown:

- ``spec``: computed from the ArchSpec alone before training (the cost model's profile at
  the study's reference input), so it can be constrained and an infeasible architecture
  is never trained;
- ``worker``: measured on the worker before training (timings on the trial's device);
- ``trained``: read from evaluate()'s result after training (the task's metrics, time).

Everything else (study-file checks, the figures a trial records, the Ray report, the
dashboard's axes and tables, the model card) derives from this module, so a new objective
is one `register(...)` here (plus its computation where the figure is produced).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .registry import Registry

WHEN = ("spec", "worker", "trained")
UNITS = ("bytes", "count", "me1", "s", "ms", "images/s", "dB", "")


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # the natural one: "minimize" or "maximize"
    unit: str  # one of UNITS; decides parsing of bounds and display
    when: str  # one of WHEN
    description: str
    compute: Callable[[Any], float] | None = None  # spec: from a costs.profile.Profile
    metric: bool = False  # a task metric (dice, psnr, ...): which ones a task has is the task's
    # spec figures of a training step: compute(spec, budget) at the budget's batch and size,
    # worked out only for studies that optimise or constrain them (it costs a meta step)
    at_budget: bool = False
    positive: bool = False  # never 0 or below (a latency, a training peak): a max <= 0 admits nothing

    @property
    def before_training(self) -> bool:
        return self.when in ("spec", "worker")

    def format(self, value: Any) -> str:
        """The value for people: MiB for bytes, M/G for counts, 4 significant digits else."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        v = float(value)
        if self.unit == "bytes":
            return f"{v / 2**20:.3g} MiB"
        if self.unit == "count":
            return f"{v / 1e9:.3g} G" if v >= 1e9 else f"{v / 1e6:.3g} M"
        suffix = {"me1": " M_E1", "s": " s", "ms": " ms", "images/s": " img/s", "dB": " dB"}.get(self.unit, "")
        return f"{v:.4g}{suffix}"

    def axis(self) -> tuple[str, float]:
        """(axis title, divisor) for plots: bytes are drawn in MiB."""
        if self.unit == "bytes":
            return f"{self.name} (MiB)", 2**20
        return (f"{self.name} ({self.unit})" if self.unit else self.name), 1.0


OBJECTIVES: Registry[Objective] = Registry("objective", "objective")


def register(obj: Objective) -> Objective:
    OBJECTIVES._entries[obj.name] = obj  # records carry their own name: no decorator needed
    return obj


def get(name: str) -> Objective:
    return OBJECTIVES.get(name)


def list_objectives(when: str | None = None) -> list[str]:
    """Names in the catalogue (optionally only those known `when`)."""
    return [n for n, o in OBJECTIVES.items() if when is None or o.when == when]


def known_before_training() -> list[str]:
    return [n for n, o in OBJECTIVES.items() if o.before_training]


def format_value(name: str, value: Any) -> str:
    """Format a figure by its catalogue unit; names outside the catalogue get 4 digits."""
    if name in OBJECTIVES:
        return OBJECTIVES.get(name).format(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _profiled(attr: str) -> Callable[[Any], float]:
    return lambda prof: getattr(prof, attr)


# -- from the spec (the cost model) ------------------------------------------------------
for _name, _unit, _text in (
    ("skip_memory_bytes", "bytes", "peak bytes the skip path holds (inference, batch 1, reference input)"),
    ("skip_memory_me1", "me1", "skip memory in units of M_E1 (the bytes of the first encoder level's output)"),
    ("peak_activation_bytes", "bytes", "peak of all live activations in one inference forward pass"),
    ("params", "count", "number of parameters"),
    ("macs", "count", "multiply-accumulates of one forward pass, as thop counts them"),
    ("flops", "count", "FLOPs of convolutions and matmuls (torch's FlopCounterMode)"),
):
    register(Objective(_name, "minimize", _unit, "spec", _text, _profiled(_name), positive=not _name.startswith("skip")))


def _train_peak(spec: Any, budget: Any) -> float:
    from .costs.training import train_memory

    return float(train_memory(spec, budget).peak_bytes)


register(
    Objective(
        "train_peak_bytes",
        "minimize",
        "bytes",
        "spec",
        "peak bytes of one training step (weights, gradients, optimizer state, activations) at the budget's batch and size",
        _train_peak,
        at_budget=True,
        positive=True,
    )
)

# -- measured on the worker, before training -------------------------------------------
register(
    Objective(
        "latency_ms",
        "minimize",
        "ms",
        "worker",
        "median forward latency, batch 1, at the reference input, on the trial's device (spread: latency_ms_iqr)",
        positive=True,
    )
)

# -- from training -------------------------------------------------------------------------
for _name, _unit, _text in (
    ("dice", "", "mean per-image Dice over the foreground classes (validation set)"),
    ("iou", "", "mean per-image IoU over the foreground classes"),
    ("mdice", "", "mean per-image Dice over all classes, background included"),
    ("miou", "", "mean per-image IoU over all classes"),
    ("psnr", "dB", "mean per-image PSNR, data range 1"),
    ("ssim", "", "mean per-image SSIM (Gaussian window 11, sigma 1.5)"),
):
    register(Objective(_name, "maximize", _unit, "trained", _text, metric=True))
register(Objective("train_time_s", "minimize", "s", "trained", "seconds of training within the budget"))
register(Objective("images_per_s", "maximize", "images/s", "trained", "training throughput"))

__all__ = ["OBJECTIVES", "Objective", "format_value", "get", "known_before_training", "list_objectives", "register"]
