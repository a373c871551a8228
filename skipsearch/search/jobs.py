"""What the driver hands a backend to train: a job, and how it ends.

A job is one training run: a study trial (`TrialJob`) or another seed of a finished trial
(`RepeatJob`, seed racing). The backend trains it and ends it with `finish(result)`, which
takes the worker's result to `complete`, `stop` (fidelity stopped it at a rung) or `fail`;
a driver stopped by Ctrl-C ends it with `interrupt`. Each kind owns its ending: a trial is
told to Optuna, a repeat run is recorded with its original. The Runner (study.py) asks
and tells; it does not need to know which kind a job is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import attrs as A
from .rungs import record_repeat, record_repeat_failure
from .storage import trial_id

if TYPE_CHECKING:
    from ..spec import ArchSpec
    from .study import Runner


@dataclass(eq=False)
class Job:
    runner: Runner = field(repr=False)
    trial: Any  # optuna.Trial (a FrozenTrial for a repeat of a finished one)
    spec: ArchSpec
    costs: dict[str, Any]
    stopped_at: int | None = None  # the rung step where fidelity stopped it

    @property
    def number(self) -> int:
        return self.trial.number

    def finish(self, result: dict[str, Any], ray_trial_id: str | None = None) -> None:
        """End the job with the worker's result: failed, stopped at a rung, or complete. A
        trial another driver has meanwhile finished (it took this one for dead) keeps what
        that driver recorded: this result is reported and dropped."""
        import optuna

        try:
            if A.FAILURE in result:
                self.fail(str(result[A.FAILURE]), ray_trial_id)
            elif self.stopped_at is not None or result.get(A.STOPPED_AT) is not None:
                self.stop(self.stopped_at or int(result[A.STOPPED_AT]), ray_trial_id)
            else:
                self.complete(result, ray_trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            self.runner.heart.discard(trial_id(self.trial))
            self.runner.say(f"trial {self.number} was already finished elsewhere; its result here is dropped")

    def values(self, result: dict[str, Any]) -> list[float]:
        figures = {**self.costs, **result}
        return [float(figures[o.name]) for o in self.runner.cfg.objectives]

    # each kind: what it trains with, and how it ends
    @property
    def seed_index(self) -> int:
        """Which of the study's seeds it trains with (repeats.seed_of)."""
        return 0

    @property
    def out(self) -> Path | None:
        """Where the worker keeps its weights (None: it keeps none)."""
        return None

    @property
    def rung_steps(self) -> list[int]:
        """Where the worker reports its metrics and asks whether to go on."""
        return []

    @property
    def order(self) -> int:
        """Backends start jobs in this order, and a pool advances them in it."""
        raise NotImplementedError

    def rung(self, step: int, metrics: dict[str, Any]) -> bool:
        """schedule: async: whether the job goes on from a rung (decided at once)."""
        return True

    def complete(self, result: dict[str, Any], ray_trial_id: str | None = None) -> None:
        raise NotImplementedError

    def stop(self, step: int, ray_trial_id: str | None = None) -> None:
        raise NotImplementedError

    def fail(self, reason: str, ray_trial_id: str | None = None) -> None:
        raise NotImplementedError

    def interrupt(self) -> None:
        raise NotImplementedError


@dataclass(eq=False)
class TrialJob(Job):
    """A study trial: told to Optuna as COMPLETE, PRUNED (stopped, or infeasible on a figure
    its worker measured) or FAIL; duplicates waiting for it take its outcome."""

    @property
    def out(self) -> Path | None:
        return self.runner.trial_dir(self.number, self.spec.arch_id)

    @property
    def rung_steps(self) -> list[int]:
        return list(self.runner.rung_steps)

    @property
    def order(self) -> int:
        return self.runner.slot_of(self)

    def rung(self, step: int, metrics: dict[str, Any]) -> bool:
        r = self.runner
        if r.book is None:
            return True
        self.store_rung(step, metrics)
        go = r.book.decide(self.trial, self.costs, step, metrics)
        if not go:
            self.stopped_at = step
        return go

    def store_rung(self, step: int, metrics: dict[str, Any]) -> None:
        """The figures at a rung (`rungs`) and the curve so far, stored with the trial."""
        primary = self.runner.primary
        known = A.rungs(self.trial)
        curve = [[s, m[primary]] for s, m in known.items() if primary in m] + [[step, metrics.get(primary)]]
        self.trial.set_user_attr(A.RUNGS, {**{str(s): m for s, m in known.items()}, str(step): _numbers(metrics)})
        self.trial.set_user_attr(A.CURVE, curve)

    def _store(self, result: dict[str, Any], ray_trial_id: str | None) -> None:
        for key, value in result.items():
            if _storable(value):
                self.trial.set_user_attr(key, value)
        if ray_trial_id:
            self.trial.set_user_attr(A.RAY_TRIAL_ID, ray_trial_id)

    def complete(self, result: dict[str, Any], ray_trial_id: str | None = None) -> None:
        r = self.runner
        self._store(result, ray_trial_id)
        if result.get(A.INFEASIBLE):  # a constraint on a figure the worker measured: not trained
            r.tell(self.trial, state=r.states.PRUNED)
            return
        values = self.values(result)
        if not all(math.isfinite(v) for v in values):
            return self.fail(f"non-finite objective values {values}", ray_trial_id)
        r.tell(self.trial, values)

    def stop(self, step: int, ray_trial_id: str | None = None) -> None:
        """PRUNED at the rung where fidelity stopped it, with that rung's figures."""
        r = self.runner
        self._store(A.rungs(self.trial).get(step, {}), ray_trial_id)
        self.trial.set_user_attr(A.RUNG, r.rung_steps.index(step) if step in r.rung_steps else step)
        self.trial.set_user_attr(A.STEPS, step)
        r.tell(self.trial, state=r.states.PRUNED)

    def fail(self, reason: str, ray_trial_id: str | None = None) -> None:
        if ray_trial_id:
            self.trial.set_user_attr(A.RAY_TRIAL_ID, ray_trial_id)
        self.runner.tell_fail(self.trial, reason)

    def interrupt(self) -> None:
        self.fail(A.INTERRUPTED)


@dataclass(eq=False)
class RepeatJob(Job):
    """Another seed of a finished trial: its values are recorded with the trial (Optuna keeps
    a finished trial as it is); it trains without rungs and keeps no weights."""

    index: int = 1  # the seed index

    @property
    def seed_index(self) -> int:
        return self.index

    @property
    def order(self) -> int:
        return 10**9 + self.number  # after every trial of the study

    @property
    def key(self) -> tuple[int, int]:
        return (self.number, self.index)

    def complete(self, result: dict[str, Any], ray_trial_id: str | None = None) -> None:
        r = self.runner
        r.repeating.discard(self.key)
        record_repeat(r.study, r.cfg, self.number, self.index, self.values(result))
        r.repeat_recorded()

    def stop(self, step: int, ray_trial_id: str | None = None) -> None:
        self.fail(f"stopped at step {step}, which a repeat run never is")

    def fail(self, reason: str, ray_trial_id: str | None = None) -> None:
        """The original stays; the failed seed is recorded, not retried."""
        self.runner.repeating.discard(self.key)
        record_repeat_failure(self.runner.study, self.runner.cfg, self.key, reason)

    def interrupt(self) -> None:
        self.runner.repeating.discard(self.key)  # not recorded: the next run repeats it


def repeat_job(runner: Runner, trial, index: int) -> RepeatJob:
    """The job of seed `index` of the finished `trial`, from what the trial stored."""
    from ..objectives import OBJECTIVES

    costs = {k: v for k, v in trial.user_attrs.items() if k in OBJECTIVES}
    runner.repeating.add((trial.number, index))
    return RepeatJob(runner, trial, A.spec(trial), costs, index=index)


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric figures of a rung (what a rung stores and compares)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _storable(value: Any) -> bool:
    """Whether a result value goes into a user attribute (JSON: numbers, text, lists)."""
    return value is None or isinstance(value, int | float | str | list | dict)
