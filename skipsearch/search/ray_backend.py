"""The Ray Tune backend: trials run as Tune trials on a local Ray or a cluster.

A custom Tune Searcher asks the shared Runner for the next trial that needs training,
so all Optuna bookkeeping (sampling, cheap costs, constraints, duplicates, the study
storage) stays on the driver; workers only call evaluate(). Tune's own schedulers are
not used: they rank on one metric, and a trial they stop reaches Optuna as COMPLETE with
half-trained values. With fidelity, the worker reports at each rung and a small scheduler
relays the runner's Pareto-aware decision; a stopped trial is recorded PRUNED.
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
from .study import Prepared, Runner
from .worker import run_trial, trial_config

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
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import Searcher

    cfg = runner.cfg
    sync = cfg.schedule == "sync"
    board = board_name = None
    if sync:
        try:
            _check_capacity(cfg)
        except BaseException:
            if started:
                ray.shutdown()
            raise
        board_name = f"skipsearch-verdicts-{uuid.uuid4().hex[:12]}"
        board = ray.remote(num_cpus=0)(_Verdicts).options(name=board_name).remote()

    def post() -> None:
        """Verdicts that became known go to the trials waiting for them."""
        if sync:
            for p, step, go in runner.decided():
                board.set.remote(p.number, step, go)

    class StudySearcher(Searcher):
        def __init__(self) -> None:
            super().__init__()
            self.live: dict[str, Prepared] = {}

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict | None:
            p = runner.next_trial(running=len(self.live))
            post()
            if p is None:
                # while trials run, "nothing now" is not the end: the front's repeat runs
                # are queued once the study's last trial has finished, and a sync study
                # holds a trial back until the ones before it finish (Tune asks again)
                finished = runner.done() if sync else not self.live
                return Searcher.FINISHED if finished and not self.live else None
            self.live[trial_id] = p
            report(runner.status(len(self.live)))
            return {**trial_config(p, runner), "verdicts": board_name}

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            p = self.live.pop(trial_id, None)
            if p is None:
                return
            outcome = nested(result or {}, RESULT)
            if p.stopped_at is not None:  # stopped at a rung by the scheduler below
                runner.complete(p, {"stopped_at": p.stopped_at}, trial_id)
            elif error or not outcome:
                runner.fail(p, causes.pop(trial_id, DIED), trial_id)
            elif outcome.get("failure"):
                runner.fail(p, str(outcome["failure"]), trial_id)
            else:
                runner.complete(p, outcome, trial_id)
            post()
            report(runner.status(len(self.live)))

    causes: dict[str, str] = {}  # Tune trial id -> why its worker failed (read before the searcher hears)

    class RungScheduler(FIFOScheduler):
        """Asks the runner at each rung report whether the trial goes on (fidelity), and
        reads why a trial's worker failed."""

        def on_trial_result(self, tune_controller, trial, result: dict) -> str:
            rung = nested(result, RUNG)
            p = searcher.live.get(trial.trial_id)
            if rung is None or p is None:
                return TrialScheduler.CONTINUE
            if sync:  # the trial waits for its verdict on the worker (_await_verdict)
                runner.record_rung(p, int(rung["step"]), rung["metrics"])
                post()
                return TrialScheduler.CONTINUE
            go = runner.rung(p, int(rung["step"]), rung["metrics"])
            return TrialScheduler.CONTINUE if go else TrialScheduler.STOP

        def on_trial_error(self, tune_controller, trial) -> None:
            causes[trial.trial_id] = worker_failure(_error_text(trial))

    searcher = StudySearcher()
    tuner = tune.Tuner(
        tune.with_resources(_trainable, resources(cfg)),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=RungScheduler(),
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
        for p in searcher.live.values():  # stopped by Ctrl-C or an error: not complete
            runner.interrupt(p)
        searcher.live.clear()
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


def nested(result: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The dict a worker reported under `key`: Tune hands schedulers and searchers results
    flattened ("skipsearch/dice"), so it is rebuilt from the keys under its prefix."""
    if isinstance(result.get(key), dict):
        return result[key]
    out: dict[str, Any] = {}
    prefix = key + "/"
    for k, v in result.items():
        if k.startswith(prefix):
            *path, last = k[len(prefix) :].split("/")
            node = out
            for part in path:
                node = node.setdefault(part, {})
            node[last] = v
    return out or None


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
