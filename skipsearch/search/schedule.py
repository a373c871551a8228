"""The deterministic schedule (``schedule: sync``, the default): when a trial may be asked
and what each rung decides, as functions of trial order alone, never of worker timing.

A study's trials fill *slots* 0 .. n_trials - 1 in order (a slot is the trial's place in
the study; a trial cut short by a killed driver leaves its slot to be filled again, with
the same architecture). With concurrency C:

- **Asking.** Slot k is asked only once slots 0 .. k - L are finished (L = LAG x C), and
  its sampler sees exactly those (the L - 1 slots before it as running): what a run whose
  workers finish in slot order would see, L slots behind (sampling.py). Workers start
  trials in slot order, so the C lowest unfinished slots are the ones running.
- **Rungs.** Slot p's decision at a rung waits until every lower slot has reached that rung
  or finished, and ranks p among the lower slots that reached it: the decision a
  sequential run would take. It goes on in the top 1/eta, or when none of them dominates
  it (the best seen at its cost). A rung decides only with eta trials to compare: the first
  slots to reach a rung (fewer than eta below them) wait for the next slots that run
  beside them (up to the first slot at the rung + C - 1) and are ranked with them as one
  cohort; a slot alone at a rung with nothing that can run beside it (C = 1) goes on.

Nothing here waits or reads storage: the runner records what happens, and asks for
verdicts; the backends hold a trial at a rung until its verdict is known. Every wait is
for a trial at a lower rung than the waiter (or for a slot that can start), so waits end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .fidelity import order, pareto_ranks

# A slot is asked once the slots LAG x concurrency below it have finished: twice the
# concurrency, so that one long trial does not hold a free worker back (its sampler sees
# the study as it was that many slots before; measured in BENCHMARKS.md)
LAG = 2


@dataclass
class Slot:
    number: int  # the Optuna trial filling it
    finished: bool = False
    reached: dict[int, list[float] | None] = field(default_factory=dict)  # rung step -> objective vector


class SlotBook:
    """Slots of one study: which are filled, finished, and what each reached."""

    def __init__(
        self, n_slots: int, concurrency: int, eta: int | None, directions: Sequence[str], lag: int | None = None
    ) -> None:
        self.n_slots, self.concurrency, self.eta = n_slots, max(1, concurrency), eta
        self.lag = max(self.concurrency, lag or LAG * self.concurrency)
        self.directions = list(directions)
        self.slots: dict[int, Slot] = {}
        self.of_number: dict[int, int] = {}  # trial number -> slot

    # -- recording ------------------------------------------------------------------
    def fill(self, slot: int, number: int) -> None:
        self.slots[slot] = Slot(number)
        self.of_number[number] = slot

    def vacate(self, slot: int) -> None:
        """A trial interrupted before it finished: its slot is asked again."""
        old = self.slots.pop(slot, None)
        if old is not None:
            self.of_number.pop(old.number, None)

    def reach(self, slot: int, step: int, vector: list[float] | None) -> None:
        self.slots[slot].reached[step] = vector

    def finish(self, slot: int) -> None:
        self.slots[slot].finished = True

    # -- asking ---------------------------------------------------------------------
    def next_slot(self) -> int | None:
        """The lowest slot no trial fills (None: every slot is filled)."""
        return next((s for s in range(self.n_slots) if s not in self.slots), None)

    def can_ask(self, slot: int) -> bool:
        """Whether slot `slot` may be asked now: slots 0 .. slot - lag are finished."""
        return all(self.is_finished(s) for s in range(slot - self.lag + 1))

    def view_limit(self, slot: int) -> int:
        """The sampler of `slot` sees slots below this as finished."""
        return max(0, slot - self.lag + 1)

    def all_finished(self) -> bool:
        return all(self.is_finished(s) for s in range(self.n_slots))

    def is_finished(self, slot: int) -> bool:
        s = self.slots.get(slot)
        return s is not None and s.finished

    # -- rungs ----------------------------------------------------------------------
    def verdict(self, slot: int, step: int) -> bool | None:
        """Whether `slot`, which reached rung `step`, goes on; None while undecided."""
        if self.eta is None:
            return True
        mine = self.slots[slot].reached.get(step)
        if mine is None:
            return True  # nothing to rank on: it finishes and is judged at the end
        lower = []
        for s in range(slot):
            state = self.slots.get(s)
            if state is None or (step not in state.reached and not state.finished):
                return None  # a lower slot may still reach this rung
            if state.reached.get(step) is not None:
                lower.append(s)
        if len(lower) + 1 >= self.eta:
            return self._ranks_in([*lower, slot], slot, step)
        cohort = self._cohort(lower, slot, step)
        return None if cohort is None else self._ranks_in(cohort, slot, step)

    def _cohort(self, lower: list[int], slot: int, step: int) -> list[int] | None:
        """The first eta slots at this rung among those that can run beside the first of
        them (None while one of those may still reach it)."""
        first = lower[0] if lower else slot
        members = [*lower, slot]
        for s in range(slot + 1, min(first + self.concurrency, self.n_slots)):
            if len(members) >= self.eta:
                break
            state = self.slots.get(s)
            if state is None or (step not in state.reached and not state.finished):
                return None
            if state.reached.get(step) is not None:
                members.append(s)
        return members

    def _ranks_in(self, members: list[int], slot: int, step: int) -> bool:
        """Whether `slot` goes on: in the top ceil(n / eta) of `members` at rung `step`
        (members in slot order, so ties fall to the lower slot), or on their Pareto front
        (no member is as good at no more cost: with exact costs, it is the best seen at its
        cost, and stopping it would leave that cost's best unknown)."""
        values = np.array([self.slots[s].reached[step] for s in members], dtype=float)
        keep = math.ceil(len(members) / self.eta)
        mine = members.index(slot)
        position = int(np.flatnonzero(order(values, self.directions) == mine)[0])
        return bool(position < keep or pareto_ranks(values, self.directions)[mine] == 0)
