"""The Ray Tune backend: trials run as Tune trials on a local Ray or a cluster.

A Tune Searcher (ray_driver.py) asks the shared Runner for the next job, so all Optuna
bookkeeping (sampling, cheap costs, constraints, duplicates, the study storage) stays on
the driver; workers only call evaluate() (`_trainable`, here: a worker imports this module,
which imports Ray only inside functions). With fidelity the worker reports at each rung,
and the scheduler relays the Runner's Pareto-aware decision; a stopped trial is recorded
PRUNED.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from .study import Runner
from .worker import run_trial

RESULT = "skipsearch"  # the key of a trial's whole result in Tune's report (no per-key list to keep)
RUNG = "skipsearch_rung"  # the key of an intermediate report at a rung
DIED = "the Ray worker died outside evaluate() (a crash, a kill, or the system running out of memory)"
LOG = "ray-messages.log"  # Ray's own error output of a run, kept out of the terminal (in out/ray/)


def _trainable(config: dict[str, Any]) -> None:
    from ray import tune

    verdicts = config.get("verdicts")

    def on_rung(step: int, metrics: dict[str, Any]) -> bool:
        tune.report({RUNG: {"step": step, "metrics": metrics}})
        if verdicts is None:
            return True  # async: the driver's scheduler stops the trial when it should not go on
        return _await_verdict(verdicts, config["number"], step)  # sync: wait here for the rung's decision

    started = time.time()
    result = run_trial(config, on_rung=on_rung)
    if config.get("gpu"):  # where Ray placed it, and when: the packing is checked from these
        import ray

        result["gpu"] = {**config["gpu"], "ids": [str(i) for i in ray.get_gpu_ids()], "start": started, "end": time.time()}
    tune.report({RESULT: result})


VERDICT_POLL_S = 0.2  # how often a trial waiting at a rung asks for its verdict


def _await_verdict(name: str, number: int, step: int) -> bool:
    import ray

    board = ray.get_actor(name)
    while (go := ray.get(board.get.remote(number, step))) is None:
        time.sleep(VERDICT_POLL_S)
    return go


class _Verdicts:
    """A small Ray actor: the driver posts rung verdicts, waiting trials read them."""

    def __init__(self) -> None:
        self.board: dict[tuple[int, int], bool] = {}

    def set(self, number: int, step: int, go: bool) -> None:
        self.board[(number, step)] = go

    def get(self, number: int, step: int) -> bool | None:
        return self.board.get((number, step))


def _check_capacity(cfg) -> None:
    """schedule: sync holds a trial at a rung while the trials beside it run: the cluster
    must run `concurrency` trials at once, or the wait would never end."""
    import ray

    if cfg.gpus == "auto":
        return
    have = ray.cluster_resources()
    for key, per in (("CPU", cfg.cpus), ("GPU", cfg.gpus)):
        if per and have.get(key, 0) + 1e-9 < per * cfg.concurrency:
            fits = int(have.get(key, 0) // per)
            raise UserError(
                f"{cfg.path}: concurrency: {cfg.concurrency} trials of {per:g} {key} each need {per * cfg.concurrency:g} {key}s, "
                f"the Ray cluster has {have.get(key, 0):g}; allowed: concurrency <= {fits} "
                "(schedule: sync runs that many trials side by side), or schedule: async"
            )


def run_ray(runner: Runner, report: Callable[[str], None], address: str | None = None) -> None:
    started = connect(address)
    import ray
    from ray import tune

    from .ray_driver import RungScheduler, StudySearcher

    cfg = runner.cfg
    board = board_name = None
    if cfg.schedule == "sync":
        try:
            _check_capacity(cfg)
        except BaseException:
            if started:
                ray.shutdown()
            raise
        board_name = f"skipsearch-verdicts-{uuid.uuid4().hex[:12]}"
        board = ray.remote(num_cpus=0)(_Verdicts).options(name=board_name).remote()
    searcher = StudySearcher(runner, report, board, board_name)
    tuner = tune.Tuner(
        tune.with_resources(_trainable, resources(cfg)),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=RungScheduler(searcher, lambda trial: worker_failure(_error_text(trial))),
            num_samples=-1,
            max_concurrent_trials=cfg.concurrency,
            reuse_actors=True,
            trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=cfg.name,
            storage_path=str((cfg.out / "ray").resolve()),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    try:
        with _quiet_ray(cfg.out / "ray" / LOG):
            tuner.fit()
    finally:
        searcher.interrupt_all()
        if board is not None:
            with contextlib.suppress(Exception):
                ray.kill(board)
        if started:
            ray.shutdown()


def connect(address: str | None = None) -> bool:
    """Start a local Ray (or join the cluster at `address`) unless one is connected; True
    when this call started it (and so its caller shuts it down)."""
    if not address:
        # Ray reads RAY_AUTH_MODE when it is imported: the driver and the processes it starts
        # must agree, so settle it first (token auth; a local cluster makes its own token).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    ray.init(address=address, **kwargs) if address else ray.init(**kwargs)
    return True


def resources(cfg) -> Any:
    """Each trial's Ray resources: the study's fixed CPUs and GPUs, or with gpus: auto a
    share of one GPU per trial, from its config (the driver worked it out from the trial's
    predicted training peak; gpus.py)."""
    if cfg.gpus != "auto":
        return {"cpu": cfg.cpus, "gpu": cfg.gpus}
    from ray.tune import PlacementGroupFactory

    return lambda config: PlacementGroupFactory([{"CPU": cfg.cpus, "GPU": config["gpu"]["share"]}])


def _error_text(trial) -> str:
    try:
        return Path(trial.error_file).read_text(errors="replace") if trial.error_file else ""
    except OSError:
        return ""


def worker_failure(text: str) -> str:
    """One line saying why a worker failed, from the error Tune recorded: out of memory when
    Ray's memory monitor or the system killed it, else the exception and its message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " ".join(lines).lower()
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)(\([\w.]+\))?: ", line)]
    last = errors[-1] if errors else (lines[-1] if lines else "")
    last = re.sub(r"^ray\.exceptions\.", "", last)[:300]
    if "outofmemoryerror" in joined or "low on memory" in joined or ("oom killer" in joined and "sigkill" in joined):
        return f"out of memory: Ray stopped the worker ({last})"
    if "actordiederror" in joined or "worker process has died" in joined:
        detail = re.search(r"Worker exit detail: ([^.]*\.)", " ".join(lines))
        why = f": {detail.group(1)}" if detail else ""
        return f"the Ray worker process died{why} (a crash, a kill, or the system's out-of-memory killer)"
    return f"the Ray worker raised outside evaluate(): {last}" if last else DIED


@contextlib.contextmanager
def _quiet_ray(log: Path):
    """Ray Tune's error logs and the raylet's messages about dead workers go to `log`, not
    the terminal: each failure is recorded with its cause in the study, and the progress
    lines stay readable. (Ray offers no switch for the raylet messages; its driver prints
    them through one module function, replaced here while the run lasts.)"""
    import ray._private.worker as ray_worker

    log.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    tune_log = logging.getLogger("ray.tune")
    saved = tune_log.propagate, ray_worker.print_to_stdstream

    def to_log(data, ignore_prefix: bool = False) -> None:
        if data.get("pid") == "raylet":
            handler.stream.write("".join(f"raylet: {line}\n" for line in data.get("lines", [])))
            handler.flush()
        else:
            saved[1](data, ignore_prefix)

    tune_log.addHandler(handler)
    tune_log.propagate = False
    ray_worker.print_to_stdstream = to_log
    try:
        yield
    finally:
        tune_log.removeHandler(handler)
        tune_log.propagate, ray_worker.print_to_stdstream = saved
        handler.close()
