"""The study runner: the part of a search every backend shares.

The Optuna study (in its storage) is the source of truth. The driver asks for a trial,
turns the sampled point (or a seed preset) into an ArchSpec, and computes the cheap
figures from the spec (skip memory, params, MACs, ...). An invalid spec is recorded FAIL,
one that violates a constraint PRUNED as infeasible, and an architecture the study already
has takes that trial's outcome (duplicates.py): none of them is trained. The rest go to a
backend as jobs (jobs.py), which the backend trains and ends with `job.finish(result)`;
a job tells the study through `Runner.tell`. The stored attributes are named in attrs.py.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..costs.profile import profile
from ..errors import SpecError
from ..objectives import OBJECTIVES, format_value
from ..presets import preset
from ..spec import ArchSpec
from . import attrs as A
from .attrs import INTERRUPTED, SURPLUS
from .config import StudyConfig
from .duplicates import Duplicates
from .jobs import Job, TrialJob, repeat_job
from .opening import open_study
from .progress import status_line
from .rungs import RungBook, claim_repeat, pending_repeats, update_confidence
from .storage import Heartbeat, ask, driver_alive, fail_trial, stale_trial_ids, trial_by_number, trial_id


def infeasible(constraints, figures: dict[str, Any]) -> str | None:
    """Why `figures` violate one of the constraints whose objective they hold, or None."""
    for c in constraints:
        value = figures.get(c.objective)
        if value is None or c.violation(value) <= 0:
            continue
        above = c.high is not None and value > c.high
        bound = f"<= {format_value(c.objective, c.high)}" if above else f">= {format_value(c.objective, c.low)}"
        return f"{c.objective} = {format_value(c.objective, value)}, needs {bound}"
    return None


class Runner:
    def __init__(self, cfg: StudyConfig, gpus: Any = None) -> None:
        import optuna

        self.cfg = cfg
        self.gpus = gpus  # gpus.Gpus with gpus: auto: each trial asks for its share of a GPU
        self.task = cfg.make_task()
        self.study = open_study(cfg)
        self.states = optuna.trial.TrialState
        self.driver = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.heart = Heartbeat(self.study, self.driver)
        self.recovered = self.recover()
        self.duplicates = Duplicates(self)
        self.say: Callable[[str], None] = lambda line: None
        self.book = RungBook(self.study, cfg) if cfg.fidelity else None
        self.rung_steps = cfg.fidelity.rungs(cfg.budget.steps) if cfg.fidelity else []
        self.worker_objectives = sorted(cfg.asked("worker"))
        self.queued: list[tuple[int, int]] = []  # queued repeat runs
        self.repeating: set[tuple[int, int]] = set()  # repeat runs in flight (jobs.RepeatJob)
        self._decided: dict[int, bool] = {}  # trial number -> its last rung's decision (pool.py)

    # -- bookkeeping ---------------------------------------------------------------
    def recover(self) -> int:
        """Trials left RUNNING by a dead driver (stale heartbeat): FAIL, reason 'interrupted'.
        They do not count towards n_trials, so a re-run reaches it. Running trials of live
        drivers (this one or another on the same study) are left alone."""
        return sum(fail_trial(self.study, tid, INTERRUPTED) for tid in stale_trial_ids(self.study))

    def finished(self) -> list:
        done = (self.states.COMPLETE, self.states.PRUNED, self.states.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=done) if A.counted(t)]

    def running(self) -> list:
        """Running trials of live drivers, this one included."""
        return self.study.get_trials(deepcopy=False, states=(self.states.RUNNING,))

    def remaining(self, running: int = 0) -> int:
        """Trials still to ask for: n_trials less those finished and those running (any
        live driver's). `running` is accepted for older callers and not needed."""
        self.recover()
        return self.cfg.n_trials - len(self.finished()) - len(self.running())

    def _within_budget(self, trial) -> bool:
        """Race-free between drivers: numbers are assigned atomically, so a new trial is
        within n_trials iff fewer counted trials have a smaller number."""
        counted = [t for t in self.finished() + self.running() if t.number < trial.number]
        return len(counted) < self.cfg.n_trials

    def _completed_by_arch(self) -> dict[str, Any]:
        return {
            A.arch_id(t): t
            for t in self.study.get_trials(deepcopy=False, states=(self.states.COMPLETE,))
            if A.duplicate_of(t) is None
        }

    def finished_original(self, arch_id: str):
        """The finished trial whose result a new trial of `arch_id` takes (None: train it)."""
        return self._completed_by_arch().get(arch_id)

    def _pending_presets(self) -> list[str]:
        """Presets not yet evaluated: one interrupted by a dead driver is tried again."""
        trials = self.study.get_trials(deepcopy=False)
        started = {A.preset(t) for t in trials if A.counted(t)}
        return [p for p in self.cfg.seed_presets if p not in started]

    def _preset_for(self, trial) -> str | None:
        """The seed preset `trial` evaluates (None: a sampled point)."""
        pending = self._pending_presets()
        return pending[0] if pending else None

    def trial_dir(self, number: int, arch_id: str) -> Path:
        return self.cfg.out / "trials" / f"{number:05d}-{arch_id}"

    # -- asking ----------------------------------------------------------------------
    def next_trial(self, running: int = 0) -> Job | None:
        """The next trial that needs training, recording the ones that do not; None when
        the study has all its trials (counting those running)."""
        self.duplicates.settle()
        while self.remaining() > 0:
            prepared = self._ask()
            if prepared is self._STOP:
                break
            if prepared is not None:
                return prepared
        return self._next_repeat(running)

    _STOP: Any = object()  # _ask found the study full (another driver took the last trial)

    def close(self) -> None:
        self.heart.close()

    def _next_repeat(self, running: int) -> Job | None:
        """The next repeat run of a front member (once the study's own trials are done); a
        run another live driver has claimed is left to it."""
        live = functools.partial(driver_alive, self.study)
        if not self.queued and running == 0:
            self.queued = [r for r in pending_repeats(self.study, self.cfg, live) if r not in self.repeating]
        while self.queued and not claim_repeat(self.study, self.queued[0], self.driver, live):
            self.queued.pop(0)
        if not self.queued:
            return None
        number, index = self.queued.pop(0)
        return repeat_job(self, trial_by_number(self.study, number), index)

    def repeat_recorded(self) -> None:
        """A repeat run was recorded: once none is left, the front's confidence is updated."""
        if not self.repeating and not pending_repeats(self.study, self.cfg):
            update_confidence(self.study, self.cfg)

    def _ask(self) -> Job | None:
        trial = ask(self.study)
        try:
            return self._prepare(trial)
        except KeyboardInterrupt:  # stopped while the trial was being prepared: recorded, not left RUNNING
            with contextlib.suppress(Exception):
                self.tell_fail(trial, INTERRUPTED)
            raise

    def _prepare(self, trial) -> Job | None:
        trial.set_user_attr(A.DRIVER, self.driver)
        self.heart.add(trial_id(trial))
        if not self._within_budget(trial):
            self.tell_fail(trial, SURPLUS)
            return self._STOP
        name = self._preset_for(trial)
        try:
            if name is not None:
                trial.set_user_attr(A.PRESET, name)
                spec = self.task.adapt(preset(name))
            else:
                spec = self.cfg.space.to_spec(self.cfg.space.suggest(trial), self.task)
        except SpecError as err:
            self.tell_fail(trial, f"invalid spec: {err}")
            return None
        costs = self.cheap_costs(spec)
        for key in (A.SPEC, A.ARCH_ID, A.SUMMARY, A.SKIP, A.BLOCK):
            trial.set_user_attr(key, costs.pop(key) if key in costs else getattr(spec, key, None))
        for key, value in costs.items():
            trial.set_user_attr(key, value)
        reason = infeasible(self.cfg.constraints, costs)  # the worker checks what only it measures
        if self.gpus is not None:
            reason = reason or self.gpus.unfit(costs["train_peak_bytes"])
            trial.set_user_attr(A.GPU_SHARE, self.gpus.share(costs["train_peak_bytes"]))
        if reason:
            trial.set_user_attr(A.INFEASIBLE, reason)
            self.tell(trial, state=self.states.PRUNED)
            return None
        if self.duplicates.take(trial, spec.arch_id):
            return None
        return TrialJob(self, trial, spec, costs)

    def tell(self, trial, values=None, state=None) -> None:
        """study.tell that survives a trial finished by someone else (a driver that took
        this one for dead): reported, not fatal. Duplicates waiting for it then settle."""
        import optuna

        self.heart.discard(trial_id(trial))
        try:
            self.study.tell(trial, values, state=state)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as err:
            if isinstance(err, ValueError) and "Cannot tell a" not in str(err):  # Optuna's words for a finished trial
                raise
            self.say(f"trial {trial.number} was already finished elsewhere; its result here is dropped")
        self.told(trial)
        self.duplicates.settle()

    def told(self, trial) -> None:
        """A hook: `trial` has been told (schedule: sync frees its slot)."""

    def tell_fail(self, trial, reason: str) -> None:
        import optuna

        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial.set_user_attr(A.FAILURE, reason[:2000])
        self.tell(trial, state=self.states.FAIL)

    def cheap_costs(self, spec: ArchSpec) -> dict[str, Any]:
        """Figures known from the spec alone, at the study's reference input size."""
        prof = profile(spec, self.cfg.reference_input)
        costs = {n: o.compute(prof) for n, o in OBJECTIVES.items() if o.when == "spec" and not o.at_budget}
        packed = ["train_peak_bytes"] if self.gpus is not None else []  # the GPU share is worked out from it
        for n in dict.fromkeys(self.cfg.asked("spec", at_budget=True) + packed):
            costs[n] = OBJECTIVES.get(n).compute(spec, self.cfg.budget)
        costs["skip_timeline"] = [s.skip_bytes for s in prof.timeline]
        costs["skip_levels"] = prof.peak_stage.levels
        costs["m_e1_bytes"] = prof.m_e1_bytes
        costs.update(
            spec=spec.to_json(indent=None),
            arch_id=spec.arch_id,
            summary=spec.summary(),
            skip=spec.skip.type,
            block=spec.block.type,
        )
        return costs

    def gpu_request(self, p: Job) -> dict[str, Any] | None:
        """gpus: auto: the trial's share of a GPU and its allocator cap (gpus.Gpus.worker),
        from its predicted training peak (worked out here for a trial stored without it)."""
        if self.gpus is None:
            return None
        if p.costs.get("train_peak_bytes") is None:
            p.costs["train_peak_bytes"] = OBJECTIVES.get("train_peak_bytes").compute(p.spec, self.cfg.budget)
        return self.gpus.worker(p.costs["train_peak_bytes"])

    # -- rungs -----------------------------------------------------------------------
    # the pool's interface (pool.py): with schedule: async a rung decides at once
    def record_rung(self, p: Job, step: int, metrics: dict[str, Any]) -> None:
        self._decided[p.number] = p.rung(step, metrics)

    def verdict(self, p: Job, step: int) -> bool | None:
        return self._decided.pop(p.number, True)

    def slot_of(self, p: Job) -> int:
        return p.number

    def done(self) -> bool:
        if self.remaining() > 0 or self.duplicates.waiting or self.repeating or self.queued:
            return False
        return not pending_repeats(self.study, self.cfg, functools.partial(driver_alive, self.study))

    @property
    def primary(self) -> str:
        """The metric that curves follow: the study's first task metric."""
        metrics = [o.name for o in self.cfg.objectives if o.name in self.task.metric_names]
        return metrics[0] if metrics else self.task.primary

    # -- progress ----------------------------------------------------------------------
    def status(self, running: int = 0) -> str:
        return status_line(self)
