"""evaluate(spec, task, budget): train an architecture briefly and score it.

This is the one function every trial of a study calls. Training follows each task
family's customs: AdamW (or Adam) with a cosine schedule and global-norm gradient
clipping; segmentation minimises BCE + Dice (CE + Dice for multi-class), restoration
NAFNet's PSNR loss with betas (0.9, 0.9). On CUDA it uses bf16 autocast and
channels_last. Seeding makes a CPU run repeatable.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .costs.fit import available_bytes, check_fits, check_sizes, training_bytes
from .errors import TrainingError, UserError
from .model import build_model
from .outputs import check_target, publish
from .spec import ArchSpec
from .tasks import Task, make_task
from .tasks.base import Batch, Cases


def _int(low: int, high: int | None = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)


def _number(low: float, strict: bool = True, none: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if v is None:
            return none
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return v > low if strict else v >= low

    return ok


def _pair(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list | tuple) and len(v) == 2 and all(ok(x) for x in v)


def _sides(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list | tuple) and len(v) in (2, 3) and all(ok(x) for x in v)


# Sanity bounds: far beyond any real training run, low enough that nothing overflows
MAX_STEPS = 10**8
MAX_BATCH = 2**16
MAX_SIDE = 16384  # pixels per side of a training crop (the largest reference input too)
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64 bits

_DEVICE = lambda v: isinstance(v, str) and (v in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", v) is not None)  # noqa: E731
_BUDGET_CHECKS: list[tuple[str, Callable[[Any], bool], str]] = [
    ("steps", _int(1, MAX_STEPS), f"an integer >= 1 and <= {MAX_STEPS:,}"),
    ("seconds", _number(0, none=True), "a positive number of seconds"),
    ("batch", _int(1, MAX_BATCH), f"an integer >= 1 and <= {MAX_BATCH:,}"),
    ("size", _sides(_int(8, MAX_SIDE)), f"two integers >= 8 and <= {MAX_SIDE} (H, W), or three for volumes (D, H, W)"),
    ("lr", _number(0), "a positive number"),
    ("optimizer", lambda v: v in ("adamw", "adam"), "adamw, adam"),
    ("weight_decay", _number(0, strict=False), "a number >= 0"),
    ("betas", lambda v: v is None or _pair(lambda b: _number(0, strict=False)(b) and b < 1)(v), "two numbers in [0, 1)"),
    ("grad_clip", _number(0, none=True), "a positive number, or null for no clipping"),
    ("min_lr", _number(0, strict=False), "a number >= 0"),
    ("seed", _int(0, MAX_SEED), "an integer >= 0 and < 2**63"),
    ("device", _DEVICE, "auto, cpu, cuda, cuda:N"),
    ("amp", lambda v: isinstance(v, bool), "true, false"),
    ("channels_last", lambda v: isinstance(v, bool), "true, false"),
    ("val_batch", _int(1, MAX_BATCH), f"an integer >= 1 and <= {MAX_BATCH:,}"),
    ("checkpoint", lambda v: isinstance(v, bool), "true, false"),
    ("deterministic", lambda v: isinstance(v, bool), "true, false"),
]


@dataclass(frozen=True)
class Budget:
    """How much training one evaluation gets. Training stops at `steps` or after
    `seconds` of training (when given), whichever comes first; the cosine schedule
    spans `steps`."""

    steps: int = 200
    seconds: float | None = None
    batch: int = 8
    size: tuple[int, ...] = (64, 64)  # (H, W); (D, H, W) for volumes
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    betas: tuple[float, float] | None = None  # None: (0.9, 0.9) for restoration, (0.9, 0.999) else
    grad_clip: float | None = 1.0
    min_lr: float = 1e-6
    seed: int = 0
    device: str = "auto"  # auto: cuda when available
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # (CUDA only)
    val_batch: int = 32
    checkpoint: bool = False  # recompute each encoder and decoder level in backward (less memory, same result)
    deterministic: bool = False  # CUDA: deterministic kernels only (repeatable sums, slower); the CPU is already

    def __post_init__(self) -> None:
        for name, ok, allowed in _BUDGET_CHECKS:
            value = getattr(self, name)
            if not ok(value):
                raise UserError(f"budget {name}: {value!r} is invalid; allowed: {allowed}{_text_number(value)}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        if self.betas is not None:
            object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text_number(value: Any) -> str:
    """A hint for a number written so that YAML reads it as text (1e-3 needs a dot: 1.0e-3)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return f" (YAML reads {value} as text; write it with a dot and a signed exponent, e.g. 1.0e-3)"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{name!r}: no CUDA GPU is available here; allowed: cpu, auto", field="device")
    return torch.device(name)


def _optimizer(model: torch.nn.Module, task: Task, budget: Budget) -> torch.optim.Optimizer:
    betas = budget.betas or ((0.9, 0.9) if task.kind == "restore" else (0.9, 0.999))
    cls = torch.optim.AdamW if budget.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=budget.lr, betas=betas, weight_decay=budget.weight_decay)


def _cosine(step: int, budget: Budget) -> float:
    """Learning-rate factor at `step`: cosine from lr down to min_lr over the budget."""
    floor = budget.min_lr / budget.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, budget.steps) / budget.steps))


@torch.no_grad()
def val_metrics(
    model: torch.nn.Module, task: Task, data: Batch | Cases, budget: Budget, device: torch.device
) -> dict[str, float]:
    """Mean per-image (per-case) metrics over the validation set (leaves the model in eval
    mode). Whole cases (Cases) are scored by sliding-window inference with tiles of the
    training size. Volumes go through at most the training batch per forward pass, so
    scoring never needs more memory than a training step."""
    model.eval()
    sums: dict[str, float] = {}
    autocast = device.type == "cuda" and budget.amp
    per_pass = budget.val_batch if len(budget.size) == 2 else min(budget.val_batch, budget.batch)

    def add(scores: dict[str, torch.Tensor]) -> None:
        for k, v in scores.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())

    if isinstance(data, Cases):
        from .tasks.sliding import predict

        for i in range(len(data)):
            image, label = data[i]
            logits = predict(model, image, budget.size, per_pass, autocast)
            add(task.score(logits[None], label[None].to(logits.device)))
        return {k: v / len(data) for k, v in sums.items()}
    x_all, y_all = data
    for i in range(0, len(x_all), per_pass):
        x = x_all[i : i + per_pass].to(device, non_blocking=True)
        y = y_all[i : i + per_pass].to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = model(x)
        add(task.score(out.float(), y))
    return {k: v / len(x_all) for k, v in sums.items()}


def _save(out: Path, model: torch.nn.Module, spec: ArchSpec, result: dict[str, Any]) -> Path:
    """Write weights, spec and metrics into `out`: a temporary sibling folder first, then
    moved into place, so an interrupted run leaves nothing half-written and files the user
    keeps beside an earlier run's survive."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"arch_id": spec.arch_id})
        (tmp / "spec.json").write_text(spec.to_json() + "\n")
        (tmp / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        publish(tmp, out, "train")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "model.safetensors"


def check_budget_fits(spec: ArchSpec, budget: Budget, device: torch.device) -> None:
    """Refuse a budget whose training step cannot fit in the device's memory (predicted on
    the meta device, before any data or weights are allocated)."""
    what = f"budget size {'x'.join(map(str, budget.size))}, batch {budget.batch}"
    check_sizes(spec, budget.batch, budget.size, what)
    try:
        needed = training_bytes(spec, budget.batch, budget.size)
    except ValueError as err:  # torch's own check, raised on meta too: a norm over a single value
        if "Expected more than 1" not in str(err):
            raise
        raise UserError(_single_value(spec, budget, what, "spatial element" in str(err))) from None
    check_fits(needed, device, what)


def _single_value(spec: ArchSpec, budget: Budget, what: str, instance: bool) -> str:
    side = 2**spec.depth
    deepest = "x".join(str(-(-s // side)) for s in budget.size)
    norm, more = ("instance norm", "") if instance else ("batch norm", ", or a batch of 2 or more")
    return (
        f"{what}: the deepest level of this depth-{spec.depth} network is {deepest}, and its {norm} needs more than "
        f"one value per channel to train; allowed: a size with a side longer than {side}{more}"
    )


def check_data_fits(task: Task, budget: Budget) -> None:
    """Refuse a task whose data, decoded into memory at the training size (tasks keep their
    whole training and validation sets there), would not fit in this machine's memory."""
    footprint = task.data_footprint(tuple(budget.size))
    have = available_bytes("cpu")
    if footprint is not None and have is not None and footprint[0] > have:
        needed, what = footprint
        size = "x".join(map(str, budget.size))
        raise UserError(
            f"budget size {size}: the task's data needs about {needed / 2**30:,.2f} GiB in memory ({what}), "
            f"{have / 2**30:,.2f} GiB is available; allowed: a smaller size or fewer images"
        )


Progress = Callable[[int, int, float], None]
# on_rung(step, metrics at that step) -> True to go on training, False to stop here
OnRung = Callable[[int, dict[str, float]], bool]


def evaluate(
    spec: ArchSpec,
    task: Task | str,
    budget: Budget | None = None,
    *,
    out: str | Path | None = None,
    progress: Progress | None = None,
    rungs: Sequence[int] = (),
    on_rung: OnRung | None = None,
) -> dict[str, Any]:
    """Train `spec` on `task` within `budget`, then score it on the validation set.

    Returns the task's metrics by name (dice, iou, mdice, miou or psnr, ssim) with
    train_time_s, images_per_s, steps, final_loss, curve ([steps, primary metric] at each
    rung and at the end) and weights (the safetensors path when `out` is given; spec.json
    and metrics.json are written beside it).

    At each step in `rungs` (below budget.steps) the model is scored on the validation
    set and `on_rung` decides whether training goes on. Scoring changes nothing that
    training uses (no random numbers, no running statistics), and the learning-rate
    schedule always spans budget.steps, so a run that passes every rung ends with exactly
    the weights of a straight run. A run stopped at a rung returns that rung's metrics
    with `stopped_at` set and writes no weights.

    Raises TrainingError when the loss stops being finite, UserError for a spec that
    does not fit the task.
    """
    budget = budget or Budget()
    if out is not None:
        check_target(Path(out), "training output")  # before any training: never into a user's folder
    task = make_task(task) if isinstance(task, str) else task
    why = task.mismatch(spec)
    if why:
        raise UserError(f"{why} (task.adapt(spec) gives one that fits)")
    device = resolve_device(budget.device)
    check_budget_fits(spec, budget, device)
    check_data_fits(task, budget)
    run = _Run(spec, task, budget, device)
    stopped = run.train(set(r for r in rungs if 0 < r < budget.steps), on_rung, progress)
    result = run.finish(stopped)
    write = out is not None and stopped is None
    result["weights"] = str(_save(Path(out), run.model, spec, result)) if write else None
    return result


def deterministic_kernels() -> None:
    """Ask torch for kernels that sum in the same order on every run (CUDA: cuDNN without
    benchmarking, cuBLAS with a fixed workspace); an operation without such a kernel then
    raises, naming itself."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


class _Run:
    """One training run: the model, its optimiser and schedule, the data, the curve."""

    def __init__(self, spec: ArchSpec, task: Task, budget: Budget, device: torch.device) -> None:
        self.task, self.budget, self.device = task, budget, device
        if budget.deterministic:
            deterministic_kernels()
        torch.manual_seed(budget.seed)
        self.batches = task.train_batches(budget.size, budget.batch, budget.seed)
        self.val = task.val_set(budget.size)
        self.cuda = device.type == "cuda"
        model = build_model(spec).to(device)
        model.checkpointing = budget.checkpoint
        self.layout = (torch.channels_last if len(budget.size) == 2 else torch.channels_last_3d) if self.cuda else None
        if self.layout is not None and budget.channels_last:
            model = model.to(memory_format=self.layout)
        self.model = model
        self.opt = _optimizer(model, task, budget)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: _cosine(s, budget))
        self.step, self.loss = 0, torch.zeros(())
        self.curve: list[list[float]] = []
        self.metrics: dict[str, float] = {}
        self.elapsed = 0.0
        self.scoring = 0.0  # seconds spent scoring at rungs, kept out of the training time

    def train(self, rungs: set[int], on_rung: OnRung | None, progress: Progress | None) -> int | None:
        """Train to budget.steps (or budget.seconds); the step it stopped at a rung, or None."""
        check_every = 20 if self.cuda else 1  # a finiteness check syncs the GPU
        b = self.budget
        self.model.train()
        start = time.perf_counter()
        while self.step < b.steps:
            self._one_step()
            if self.step % check_every == 0 or self.step == b.steps:
                value = float(self.loss.detach())
                if not math.isfinite(value):
                    raise TrainingError(f"loss became {value} at step {self.step} (lr {b.lr:g})")
                if progress is not None:
                    progress(self.step, b.steps, value)
            self.elapsed = time.perf_counter() - start - self.scoring
            if self.step in rungs and not self._rung(on_rung):
                return self.step
            if b.seconds is not None and self.elapsed >= b.seconds:
                break
        return None

    def _one_step(self) -> None:
        x, y = next(self.batches)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.layout is not None and self.budget.channels_last:
            x = x.contiguous(memory_format=self.layout)
        self.loss = train_step(self.model, self.opt, self.task, x, y, self.budget)
        self.sched.step()
        self.step += 1

    def _score(self) -> dict[str, float]:
        self.metrics = val_metrics(self.model, self.task, self.val, self.budget, self.device)
        self.curve.append([self.step, self.metrics[self.task.primary]])
        return self.metrics

    def _rung(self, on_rung: OnRung | None) -> bool:
        t = time.perf_counter()
        metrics = {**self._score(), "train_time_s": self.elapsed, "steps": self.step}
        self.model.train()
        self.scoring += time.perf_counter() - t
        return on_rung is None or bool(on_rung(self.step, metrics))

    def finish(self, stopped: int | None) -> dict[str, Any]:
        if self.cuda:
            torch.cuda.synchronize()
        result: dict[str, Any] = dict(self.metrics) if stopped is not None else dict(self._score())
        result.update(
            train_time_s=self.elapsed,
            images_per_s=self.step * self.budget.batch / max(self.elapsed, 1e-9),
            steps=self.step,
            final_loss=float(self.loss.detach()),
            device=str(self.device),
            curve=self.curve,
            stopped_at=stopped,
        )
        return result


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, task: Task, x, y, budget: Budget) -> torch.Tensor:
    """One optimisation step; training and the training-memory measurement
    (costs/training.py) both run this, so the measured peak is the trained one. The
    gradients are released before the forward pass, not after it: the numbers are the
    same, and the last step's gradients are not held through the forward pass."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.device.type == "cuda" and budget.amp):
        loss = task.loss(model(x).float(), y)
    loss.backward()
    if budget.grad_clip:
        # per tensor off CUDA, so the meta device predicts the CPU's temporaries exactly
        foreach = None if x.device.type == "cuda" else False
        torch.nn.utils.clip_grad_norm_(model.parameters(), budget.grad_clip, foreach=foreach)
    opt.step()
    return loss


__all__ = ["Budget", "TrainingError", "evaluate", "val_metrics"]
