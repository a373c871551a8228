"""The Ray Tune backend: trials run as Tune trials on a local Ray or a cluster.

A custom Tune Searcher asks the shared Runner for the next trial that needs training,
so all Optuna bookkeeping (sampling, cheap costs, constraints, duplicates, the study
storage) stays on the driver; workers only call evaluate(). Tune's own schedulers are
not used: they rank on one metric, and a trial they stop reaches Optuna as COMPLETE with
half-trained values. With fidelity, the worker reports at each rung and a small scheduler
relays the runner's Pareto-aware decision; a stopped trial is recorded PRUNED.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .study import Prepared, Runner
from .worker import run_trial, trial_config

RESULT = "skipsearch"  # the key of a trial's whole result in Tune's report (no per-key list to keep)
RUNG = "skipsearch_rung"  # the key of an intermediate report at a rung


def _trainable(config: dict[str, Any]) -> None:
    from ray import tune

    def on_rung(step: int, metrics: dict[str, Any]) -> bool:
        tune.report({RUNG: {"step": step, "metrics": metrics}})
        return True  # the driver's scheduler stops the trial when it should not go on

    tune.report({RESULT: run_trial(config, on_rung=on_rung)})


def run_ray(runner: Runner, report: Callable[[str], None], address: str | None = None) -> None:
    if not address:
        # Ray reads RAY_AUTH_MODE when it is imported: the driver and the processes it starts
        # must agree, so settle it first (token auth; a local cluster makes its own token).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import Searcher

    cfg = runner.cfg
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
        ray.init(address=address, **kwargs) if address else ray.init(**kwargs)

    class StudySearcher(Searcher):
        def __init__(self) -> None:
            super().__init__()
            self.live: dict[str, Prepared] = {}

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict | None:
            p = runner.next_trial(running=len(self.live))
            if p is None:
                return Searcher.FINISHED
            self.live[trial_id] = p
            report(runner.status(len(self.live)))
            return trial_config(p, runner)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            p = self.live.pop(trial_id, None)
            if p is None:
                return
            outcome = (result or {}).get(RESULT)
            if p.stopped_at is not None:  # stopped at a rung by the scheduler below
                runner.complete(p, {"stopped_at": p.stopped_at}, trial_id)
            elif error or not outcome:
                runner.fail(p, "the Ray worker died or raised (out of memory, killed, or a crash outside evaluate())", trial_id)
            elif outcome.get("failure"):
                runner.fail(p, str(outcome["failure"]), trial_id)
            else:
                runner.complete(p, outcome, trial_id)
            report(runner.status(len(self.live)))

    class RungScheduler(FIFOScheduler):
        """Asks the runner at each rung report whether the trial goes on (fidelity)."""

        def on_trial_result(self, tune_controller, trial, result: dict) -> str:
            rung = result.get(RUNG)
            p = searcher.live.get(trial.trial_id)
            if rung is None or p is None:
                return TrialScheduler.CONTINUE
            go = runner.rung(p, int(rung["step"]), rung["metrics"])
            return TrialScheduler.CONTINUE if go else TrialScheduler.STOP

    searcher = StudySearcher()
    resources = {"cpu": cfg.cpus, "gpu": cfg.gpus}
    tuner = tune.Tuner(
        tune.with_resources(_trainable, resources),
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
        tuner.fit()
    finally:
        for p in searcher.live.values():  # stopped by Ctrl-C or an error: not complete
            runner.interrupt(p)
        searcher.live.clear()
        if started:
            ray.shutdown()
