"""The worker side of a trial: what it needs to train (JSON-friendly, for Ray) and the
call that trains it. Nothing here touches the study; the driver (study.py) records."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..spec import ArchSpec
from . import attrs as A
from .fields import Constraint
from .gpus import limit_allocator
from .jobs import Job
from .repeats import seed_of
from .study import Runner, infeasible


def trial_config(p: Job, runner: Runner) -> dict[str, Any]:
    """What a worker needs to train one job (JSON-friendly, for Ray): its seed, its rungs,
    where it keeps its weights (a repeat run trains without rungs and keeps none)."""
    cfg = runner.cfg
    budget = {**cfg.budget.to_dict(), "seed": seed_of(cfg.budget.seed, p.seed_index)}
    measures = p.seed_index == 0  # figures only the trial's device gives, measured once
    return {
        "spec": p.spec.to_json(indent=None),
        "task": cfg.task_name,
        "task_options": cfg.task_options,
        "budget": budget,
        "out": None if p.out is None else str(p.out),
        "number": p.number,
        "rungs": p.rung_steps,
        "worker": runner.worker_objectives if measures else [],
        "reference_input": list(cfg.reference_input),
        "constraints": [[c.objective, c.low, c.high] for c in cfg.constraints if c.objective in runner.worker_objectives],
        # gpus: auto: the trial's share of a GPU (Ray's request) and its allocator cap
        "gpu": runner.gpu_request(p),
    }


def run_trial(config: dict[str, Any], task=None, on_rung: Callable[[int, dict], bool] | None = None) -> dict[str, Any]:
    """Train one trial from its config; never raises: failures come back as {'failure': reason}.
    `on_rung(step, metrics)` is asked at each rung whether to go on."""
    from ..tasks import make_task
    from ..train import Budget, evaluate

    start = time.perf_counter()
    try:
        budget = dict(config["budget"])
        budget["size"] = tuple(budget["size"])
        if budget.get("betas"):
            budget["betas"] = tuple(budget["betas"])
        task = task or make_task(config["task"], **config["task_options"])
        spec = ArchSpec.from_json(config["spec"])
        limit_allocator(config.get("gpu"))
        before = measured_before_training(spec, config, budget.get("device", "auto"))
        reason = infeasible([Constraint(*c) for c in config.get("constraints", [])], before)
        if reason:
            return {**before, A.INFEASIBLE: reason, A.WALL_S: time.perf_counter() - start}
        result = evaluate(
            spec,
            task,
            Budget(**budget),
            out=config["out"],
            rungs=config.get("rungs", []),
            on_rung=on_rung,
        )
    except Exception as err:  # recorded with its reason; the study goes on
        return {A.FAILURE: _reason(err), A.WALL_S: time.perf_counter() - start}
    result.update(before)
    result[A.WALL_S] = time.perf_counter() - start
    return result


def measured_before_training(spec: ArchSpec, config: dict[str, Any], device: str) -> dict[str, Any]:
    """The worker-measured objectives the study asks for (latency), on the trial's device."""
    if "latency_ms" not in config.get("worker", []):
        return {}
    from ..costs.latency import latency
    from ..train import resolve_device

    return latency(spec, tuple(config["reference_input"]), device=str(resolve_device(device))).to_dict()


OOM_SIGNS = ("out of memory", "can't allocate memory", "defaultcpuallocator", "cannot allocate memory")


def _reason(err: BaseException) -> str:
    """One line naming what went wrong; allocation failures (CPU or GPU) say 'out of memory'."""
    import torch

    name = type(err).__name__
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    oom = isinstance(err, (MemoryError, torch.OutOfMemoryError)) or any(s in text.lower() for s in OOM_SIGNS)
    if oom:
        return f"out of memory ({name}: {text})"
    return f"{name}: {text}" if text else name
