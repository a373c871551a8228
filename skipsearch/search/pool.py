"""C workers in one process for a deterministic study: the local and tabular backends.

A trial's training runs as a generator: it yields each rung's metrics, is sent whether
to go on, and returns its result. The pool keeps up to `concurrency` jobs in
flight, holds a job at a rung until the runner's verdict is known, and advances the job
whose next event comes first. With `durations` it keeps a simulated clock (the tabular
backend: each job takes the seconds it says per step), and counts the worker-seconds
spent waiting at a rung or without a trial while the schedule holds the next one back:
the idle cost of determinism. Without, jobs advance in slot order (the local backend:
one job trains at a time, the others wait in their threads).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from . import attrs as A

Training = Generator[tuple[int, dict[str, Any]], bool, dict[str, Any]]
# the training of a job (jobs.Job), and its seconds per training step (None: no clock)
StartJob = Callable[[Any], tuple[Training, float | None]]


@dataclass
class Idle:
    """Worker-seconds of a simulated run: busy, waiting at a rung, without a trial."""

    busy: float = 0.0
    at_rung: float = 0.0
    no_trial: float = 0.0
    makespan: float = 0.0

    @property
    def share(self) -> float:
        total = self.busy + self.at_rung + self.no_trial
        return (self.at_rung + self.no_trial) / total if total else 0.0


@dataclass(order=True)
class _Running:
    ready: float  # clock time of its next event
    slot: int
    job: Any = field(compare=False)  # jobs.Job
    training: Training = field(compare=False)
    per_step: float | None = field(compare=False)
    step: int = field(default=0, compare=False)  # steps trained so far
    waiting: tuple[int, float] | None = field(default=None, compare=False)  # (rung step, since)
    event: Any = field(default=None, compare=False)  # the job's pending yield (step, metrics), or its result


class Pool:
    def __init__(self, runner, concurrency: int, start: StartJob, report: Callable[[str], None] | None = None) -> None:
        self.runner, self.concurrency, self.start = runner, max(1, concurrency), start
        self.report = report or (lambda line: None)
        self.idle = Idle()
        self.clock = 0.0
        self.running: dict[int, _Running] = {}

    def run(self) -> Idle:
        try:
            while True:
                self._fill()
                self._deliver()
                nxt = self._next()
                if nxt is None:
                    if self.runner.done() and not self.running:
                        break
                    if not self.running:
                        self._fill()
                        if not self.running and not self.runner.done():
                            raise RuntimeError("the schedule has no trial to run and is not done (a bug)")
                        continue
                    raise RuntimeError("every running trial waits at a rung and none can be decided (a bug)")
                self._advance(nxt)
        except BaseException:  # Ctrl-C (or a bug): the trials in flight are recorded as interrupted
            for r in self.running.values():
                r.job.interrupt()
                r.training.close()
            self.running.clear()
            raise
        self.idle.makespan = self.clock
        return self.idle

    # -- the loop's steps ----------------------------------------------------------------
    def _fill(self) -> None:
        while len(self.running) < self.concurrency:
            p = self.runner.next_trial(running=len(self.running))
            if p is None:
                return
            training, per_step = self.start(p)
            r = _Running(self.clock, p.order, p, training, per_step)
            self.running[id(r)] = r  # first: a Ctrl-C while it trains finds it here
            self._pull(r, None)

    def _pull(self, r: _Running, go: bool | None) -> None:
        """Run the job to its next event (a rung or its end) and date it."""
        try:
            r.event = next(r.training) if go is None else r.training.send(go)
            step = r.event[0]
        except StopIteration as stop:
            r.event = stop.value
            step = int(stop.value.get(A.STOPPED_AT) or stop.value.get(A.STEPS) or r.step)
        if r.per_step is not None:
            r.ready = self.clock + max(0, step - r.step) * r.per_step
        r.step = max(r.step, step)

    def _next(self) -> _Running | None:
        free = [r for r in self.running.values() if r.waiting is None]
        return min(free) if free else None

    def _advance(self, r: _Running) -> None:
        if r.per_step is not None:
            self._tick(r.ready)
        if isinstance(r.event, tuple):  # at a rung
            step, metrics = r.event
            self.runner.record_rung(r.job, step, metrics)
            r.waiting = (step, self.clock)
            return
        del self.running[id(r)]
        r.job.finish(r.event)
        self.report(self.runner.status())

    def _deliver(self) -> None:
        """Send each waiting job its verdict once known (repeatedly: one verdict can decide
        others)."""
        for r in sorted(self.running.values()):
            if r.waiting is None:
                continue
            go = self.runner.verdict(r.job, r.waiting[0])
            if go is None:
                continue
            r.waiting = None
            self._pull(r, go)

    def _tick(self, until: float) -> None:
        """Move the clock, counting what each worker did meanwhile."""
        span = max(0.0, until - self.clock)
        if span == 0:
            return
        waiting = sum(r.waiting is not None for r in self.running.values())
        self.idle.at_rung += span * waiting
        self.idle.busy += span * (len(self.running) - waiting)
        self.idle.no_trial += span * (self.concurrency - len(self.running))
        self.clock = until
