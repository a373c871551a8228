"""A sampler whose answer for a slot depends on the slot alone (``schedule: sync``).

Optuna's samplers read the whole study and keep a random state across calls, so what
they propose depends on which trials happened to have finished, and, after a resume, on
how many asks the process has made. `SlotSampler` wraps one: for each ask it builds a
fresh inner sampler seeded from (study seed, slot), and hands it a view of the study in
which the slots below schedule.SlotBook.view_limit are their finished selves and the
slots between are running, numbered by slot. The same slot therefore gets the same
proposal on every run, on every backend, and again after a kill -9.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

try:  # Optuna checks that a study's sampler is one of its own
    from optuna.samplers import BaseSampler as _BaseSampler
except ImportError:  # pragma: no cover - optuna is a dependency
    _BaseSampler = object


EXPLORE_AFTER = 2  # a slot whose first points repeat known architectures is sampled at random


def slot_seed(seed: int, slot: int | str) -> int:
    """The inner sampler's seed for a slot (stable across Python processes)."""
    digest = hashlib.sha256(f"skipsearch:{seed}:{slot}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class StudyView:
    """The study as the sampler of one slot may see it: everything of the real study but
    its trials (the C - 1 slots before this one shown as running)."""

    def __init__(self, study, trials: list) -> None:
        self._real, self._view = study, trials

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list:
        trials = [t for t in self._view if states is None or t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trials(self, deepcopy: bool = True, states=None) -> list:
        return self._get_trials(deepcopy, states)

    @property
    def trials(self) -> list:
        return self._get_trials()


class SlotSampler(_BaseSampler):
    """Wraps a sampler factory (seed -> Optuna sampler); set `slot` and `trials` (the
    view's trials) before each ask. Off the view (no slot set) the inner sampler sees the
    real study, so Optuna's own tools can still use the study's sampler."""

    def __init__(self, factory: Callable[[int], Any], seed: int) -> None:
        self.factory, self.seed = factory, seed
        self.slot: int | None = None
        self.view: list = []
        self._inner = factory(seed)

    @property
    def inner(self):
        """The Optuna sampler of the current slot."""
        return self._inner

    def prepare(self, slot: int, view: list, attempt: int = 0) -> None:
        """Before asking for `slot` (its `attempt`-th point: an earlier one repeated an
        architecture the study has): a fresh inner sampler, seeded from both."""
        self.slot, self.view = slot, view
        seed = slot_seed(self.seed, slot if attempt == 0 else f"{slot}.{attempt}")
        if attempt >= EXPLORE_AFTER:  # the sampler keeps proposing what the study has: explore
            import optuna

            self._inner = optuna.samplers.RandomSampler(seed=seed)
        else:
            self._inner = self.factory(seed)

    def _study(self, study):
        if self.slot is None:
            return study
        return StudyView(study, self.view)

    def _current(self, study, trial):
        """The asked trial, numbered by its slot, joins the view."""
        if self.slot is None:
            return trial
        t = copy.copy(trial)
        t.number = self.slot
        if not any(v.number == self.slot for v in self.view):
            self.view = [*self.view, t]
        return trial

    # -- Optuna's sampler interface, delegated -----------------------------------------
    def reseed_rng(self) -> None:
        self._inner.reseed_rng()

    def before_trial(self, study, trial) -> None:
        self._current(study, trial)
        self._inner.before_trial(self._study(study), trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(self._study(study), trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(self._study(study), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(self._study(study), trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)


def view_trials(trials_by_slot: dict[int, Any], limit: int, slot: int) -> list:
    """The view of slot `slot`: slots below `limit` as they are (finished), slots from
    `limit` to `slot` - 1 as running with their parameters, each numbered by its slot."""
    import optuna

    out = []
    for s in range(slot):
        t = trials_by_slot.get(s)
        if t is None:
            continue
        t = copy.copy(t)
        t.number = s
        if s >= limit:
            t.state, t.values = optuna.trial.TrialState.RUNNING, None
            t.datetime_complete = None
        out.append(t)
    return out
