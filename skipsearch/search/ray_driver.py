"""The driver's side of a Ray Tune run: the searcher that asks the Runner for jobs and the
scheduler that relays rung decisions.

This module imports Ray Tune, so it is imported once Ray is connected (ray_backend.connect
settles RAY_AUTH_MODE before Ray is first imported).

Tune's own schedulers are not used: they rank on one metric, and a trial they stop
reaches Optuna as COMPLETE with half-trained values. With fidelity the worker reports at
each rung: with schedule: async the scheduler asks the job at once and stops the trial
when it should not go on; with schedule: sync the worker waits for its verdict (the
driver posts verdicts to a small actor as they become known, `post`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from . import attrs as A
from .jobs import Job
from .ray_backend import DIED, RESULT, RUNG
from .study import Runner
from .worker import trial_config


class StudySearcher(Searcher):
    """Each Tune trial is the Runner's next job; its end is the job's end."""

    def __init__(self, runner: Runner, report: Callable[[str], None], board: Any = None, board_name: str | None = None) -> None:
        super().__init__()
        self.runner, self.report = runner, report
        self.board, self.board_name = board, board_name  # schedule: sync: the verdicts actor
        self.live: dict[str, Job] = {}  # Tune trial id -> its job
        self.causes: dict[str, str] = {}  # Tune trial id -> why its worker failed (the scheduler reads it first)

    @property
    def sync(self) -> bool:
        return self.board is not None

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def post(self) -> None:
        """Verdicts that became known go to the trials waiting for them."""
        if self.sync:
            for job, step, go in self.runner.decided():
                self.board.set.remote(job.number, step, go)

    def suggest(self, trial_id: str) -> dict | None:
        job = self.runner.next_trial(running=len(self.live))
        self.post()
        if job is None:
            # while trials run, "nothing now" is not the end: the front's repeat runs are
            # queued once the study's last trial has finished, and a sync study holds a
            # trial back until the ones before it finish (Tune asks again)
            finished = self.runner.done() if self.sync else not self.live
            return Searcher.FINISHED if finished and not self.live else None
        self.live[trial_id] = job
        self.report(self.runner.status())
        return {**trial_config(job, self.runner), "verdicts": self.board_name}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        job = self.live.pop(trial_id, None)
        if job is None:
            return
        outcome = nested(result or {}, RESULT)
        if job.stopped_at is not None:  # stopped at a rung by the scheduler
            job.finish({}, trial_id)
        elif error or not outcome:
            job.finish({A.FAILURE: self.causes.pop(trial_id, DIED)}, trial_id)
        else:
            job.finish(outcome, trial_id)
        self.post()
        self.report(self.runner.status())

    def interrupt_all(self) -> None:
        """Stopped by Ctrl-C or an error: the jobs in flight are not complete."""
        for job in self.live.values():
            job.interrupt()
        self.live.clear()


class RungScheduler(FIFOScheduler):
    """At each rung report, asks whether the trial goes on (fidelity); reads why a trial's
    worker failed."""

    def __init__(self, searcher: StudySearcher, failure: Callable[[Any], str]) -> None:
        super().__init__()
        self.searcher, self.failure = searcher, failure

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        rung = nested(result, RUNG)
        job = self.searcher.live.get(trial.trial_id)
        if rung is None or job is None:
            return TrialScheduler.CONTINUE
        step, metrics = int(rung["step"]), rung["metrics"]
        if self.searcher.sync:  # the trial waits for its verdict on the worker (ray_backend._await_verdict)
            self.searcher.runner.record_rung(job, step, metrics)
            self.searcher.post()
            return TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE if job.rung(step, metrics) else TrialScheduler.STOP

    def on_trial_error(self, tune_controller, trial) -> None:
        self.searcher.causes[trial.trial_id] = self.failure(trial)


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
