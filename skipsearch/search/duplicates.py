"""Trials of an architecture the study already has: never trained twice.

A new trial whose arch id belongs to a finished trial takes that trial's outcome at once
(its values, its stop at a rung, or its failure) and records `duplicate_of`. One whose
original is still running (this driver's or another's) waits, RUNNING, and takes the
outcome once the original has finished (`settle`, called after every tell).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import attrs as A

if TYPE_CHECKING:
    from .study import Runner

WAIT_S = 1.0  # how often a driver looks at trials it waits for (another driver's)


class Duplicates:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.waiting: list[tuple[Any, int]] = []  # (duplicate trial, number of the running original)

    def take(self, trial, arch_id: str) -> bool:
        """Whether `trial` repeats an architecture of the study: then it has taken the
        finished original's outcome, or waits for the running one's."""
        earlier = self.runner.finished_original(arch_id)
        if earlier is not None:
            self.copy(trial, earlier)
            return True
        original = self._running_original(trial, arch_id)
        if original is None:
            return False
        trial.set_user_attr(A.WAITING_FOR, original)  # being trained right now: wait, never train it twice
        self.waiting.append((trial, original))
        return True

    def _running_original(self, trial, arch_id: str) -> int | None:
        for t in self.runner.running():
            if t.number != trial.number and A.arch_id(t) == arch_id and A.waiting_for(t) is None:
                return t.number
        return None

    def copy(self, trial, earlier) -> None:
        """Record `trial` as a duplicate of the finished `earlier`: its values or its end."""
        r = self.runner
        trial.set_user_attr(A.DUPLICATE_OF, earlier.number)
        for key, value in earlier.user_attrs.items():
            if key not in trial.user_attrs and key not in A.OWN:
                trial.set_user_attr(key, value)
        if earlier.state == r.states.COMPLETE:
            r.tell(trial, earlier.values)
        elif earlier.state == r.states.PRUNED:
            r.tell(trial, state=r.states.PRUNED)  # stopped at the same rung
        else:
            why = A.failure(earlier) or "failed"
            r.tell_fail(trial, f"duplicate of trial {earlier.number}, which failed: {why}")

    def settle(self) -> None:
        """Duplicates whose original has finished take its outcome (re-entered by the tell
        of each: it sees only those still waiting)."""
        if not self.waiting:
            return
        waiting, self.waiting = self.waiting, []
        by_number = {t.number: t for t in self.runner.study.get_trials(deepcopy=False)}
        for trial, number in waiting:
            if by_number[number].state == self.runner.states.RUNNING:
                self.waiting.append((trial, number))
            else:
                self.copy(trial, by_number[number])

    def drain(self) -> None:
        """Wait for the duplicates this driver holds to be settled by their originals
        (running under another driver), then return: no trial is left RUNNING."""
        while self.waiting:
            self.runner.recover()  # an original whose driver died is failed, which settles its duplicates
            self.settle()
            if self.waiting:
                time.sleep(WAIT_S)

    def abandon(self) -> None:
        """Stopped (Ctrl-C): duplicates still waiting are recorded as interrupted."""
        waiting, self.waiting = self.waiting, []
        for trial, _ in waiting:
            self.runner.tell_fail(trial, A.INTERRUPTED)
