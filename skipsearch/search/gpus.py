"""Memory-aware GPU packing: `resources: {gpus: auto}`.

Each trial asks Ray for the share of one GPU that its predicted training peak needs:

    share = ceil_0.01((train_peak_bytes * (1 + margin) + context) / gpu_memory)

`train_peak_bytes` is the meta-device prediction at the study's budget (fp32; bf16
autocast on CUDA needs less for activations), the margin covers what the prediction leaves
out on CUDA (the caching allocator's rounding and fragmentation, foreach optimizer
temporaries, cuDNN workspaces), and the context is the CUDA context that every process
holds outside the allocator. The worker caps its allocator at `share * gpu_memory -
context` with torch.cuda.set_per_process_memory_fraction, so a trial the prediction got
wrong fails alone, as out of memory, and its neighbours on the GPU keep running.

A trial whose share would exceed one GPU is recorded PRUNED (infeasible) and never
trained; a study whose smallest architecture cannot fit any GPU is refused before it is
touched. The GPUs' memory is stated (`gpu_memory`) or asked from each GPU node of the
cluster with a small Ray task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import UserError

CONTEXT = 768 * 2**20  # CUDA context + library handles per process (torch 2.x: about 0.5-0.7 GiB)
MARGIN = 0.25  # above the predicted peak: allocator rounding/fragmentation, CUDA-only temporaries
STEP = 0.01  # shares are whole hundredths of a GPU (Ray takes at most 4 decimals)
PROBE_TIMEOUT_S = 120


def size(n: float) -> str:
    """Bytes for people, at GPU scale: GiB from 1 GiB up, MiB below."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True)
class Packing:
    """The study's packing rule; `memory` is the stated memory of each GPU, or None."""

    memory: int | None = None
    margin: float = MARGIN
    context: int = CONTEXT

    def need(self, peak: float) -> int:
        """Bytes of a GPU one trial with this predicted training peak takes."""
        return self.allocator(peak) + self.context

    def allocator(self, peak: float) -> int:
        return math.ceil(peak * (1 + self.margin))

    def explain(self, peak: float) -> str:
        return (
            f"train_peak_bytes = {size(peak)}; with the margin ({self.margin:.0%})"
            f" and the CUDA context ({size(self.context)}) it needs"
            f" {size(self.need(peak))}"
        )


@dataclass(frozen=True)
class Gpus:
    """The GPUs a study packs onto: the memory of the smallest and of the largest."""

    packing: Packing
    memory: int  # of the smallest GPU: a share of it is safe on every GPU
    largest: int
    source: str  # "stated" or "measured"

    def share(self, peak: float) -> float:
        """The fraction of a GPU a trial asks Ray for (may exceed 1: then it does not fit)."""
        return max(STEP, math.ceil(round(self.packing.need(peak) / self.memory / STEP, 6)) * STEP)

    def unfit(self, peak: float) -> str | None:
        """Why a trial with this peak cannot train on one of these GPUs, or None."""
        if self.share(peak) <= 1:
            return None
        return f"{self.packing.explain(peak)}, more than a GPU's {size(self.memory)}"

    def worker(self, peak: float) -> dict[str, Any]:
        """What the worker needs to cap its allocator: its share and the allocator bytes."""
        share = self.share(peak)
        return {"share": share, "allocator_bytes": int(share * self.memory) - self.packing.context}


def smallest_training_peak(cfg, task) -> tuple[Any, float]:
    """(spec, predicted training peak) of the space's lower corner: every numeric dimension
    at its low end, skip `none` where the space has it, each block type tried. No point of
    the space trains in less, up to the other choices' small differences."""
    from ..costs.training import train_memory
    from ..errors import SpecError

    best: tuple[Any, float] | None = None
    for point in _lower_corners(cfg.space):
        try:
            spec = cfg.space.to_spec(point, task)
        except SpecError:
            continue
        peak = float(train_memory(spec, cfg.budget).peak_bytes)
        if best is None or peak < best[1]:
            best = (spec, peak)
    if best is None:  # no corner is valid: the probe (the space's first valid point) stands in
        spec = cfg.space.probe(task)
        best = (spec, float(train_memory(spec, cfg.budget).peak_bytes))
    return best


def _lower_corners(space) -> list[dict[str, Any]]:
    blocks = next((d.values for d in space.dims if d.name == "block.type" and d.kind == "choice"), (None,))
    corners = []
    for block in blocks:
        point: dict[str, Any] = {}
        for d in space.dims:
            if d.active(point):
                point[d.name] = block if d.name == "block.type" else _lowest(d)
        corners.append(point)
    return corners


def _lowest(d) -> Any:
    if d.kind in ("int", "float"):
        return int(d.low) if d.kind == "int" else d.low
    if d.kind == "choice" and all(isinstance(v, int | float) and not isinstance(v, bool) for v in d.values):
        return min(d.values)
    if d.name == "skip.type" and "none" in d.values:
        return "none"
    return d.values[0]


def check_fits(cfg, task, gpus: Gpus) -> None:
    """Refuse a study none of whose architectures fits the largest GPU at its budget."""
    spec, peak = smallest_training_peak(cfg, task)
    need = cfg.gpu_packing.need(peak)
    if need > gpus.largest:
        b = cfg.budget
        raise UserError(
            f"{cfg.path}: budget.batch: {b.batch} at size {list(b.size)}: the space's smallest architecture"
            f" ({spec.summary()}) has {cfg.gpu_packing.explain(peak)}, more than the largest GPU"
            f" ({size(gpus.largest)}, {gpus.source}); allowed: a smaller batch or"
            " size, checkpoint: true, or larger GPUs"
        )


def stated(cfg) -> Gpus | None:
    """The GPUs as the study file states them (gpu_memory), before any cluster is asked."""
    p = cfg.gpu_packing
    if p is None or p.memory is None:
        return None
    return Gpus(p, p.memory, p.memory, "stated")


def cluster_gpus(cfg) -> Gpus:
    """The GPUs of the connected Ray cluster (ray.init done); UserError when it has none."""
    import ray

    count = float(ray.cluster_resources().get("GPU", 0))
    if count <= 0:
        cpus = ray.cluster_resources().get("CPU", 0)
        raise UserError(
            f"{cfg.path}: resources.gpus: auto, but the Ray cluster has no GPU ({cpus:g} CPUs, 0 GPUs);"
            " allowed: auto on a cluster with GPUs, or a number (gpus: 0 trains on the CPU)"
        )
    p = cfg.gpu_packing
    if p.memory is not None:
        return Gpus(p, p.memory, p.memory, "stated")
    sizes = _probe_memory()
    if not sizes:
        raise UserError(
            f"{cfg.path}: resources.gpus: auto: the cluster's GPUs could not be asked for their memory"
            " (no CUDA device seen by torch on a GPU node); allowed: state it, e.g. resources: {gpus: auto, gpu_memory: 80 GiB}"
        )
    return Gpus(p, min(sizes), max(sizes), "measured")


def _probe_memory() -> list[int]:
    """The total memory of one GPU on each alive GPU node, from a task pinned to the node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_gpus=STEP, num_cpus=0)
    def total() -> int | None:
        import torch

        return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None

    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) > 0]
    refs = [total.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote() for n in nodes]
    try:
        sizes = ray.get(refs, timeout=PROBE_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        return []
    return [int(s) for s in sizes if s]


def limit_allocator(gpu: dict[str, Any] | None) -> None:
    """On the worker: cap this process's CUDA allocator at the trial's allocator bytes, so
    a mispredicted trial fails alone with out of memory (nothing to do off CUDA)."""
    import torch

    if not gpu or not torch.cuda.is_available():
        return
    device = torch.cuda.current_device()
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, max(gpu["allocator_bytes"], 1) / total), device)
