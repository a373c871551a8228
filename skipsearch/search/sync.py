"""The runner of a deterministic study (``schedule: sync``, the default).

What it adds to the shared Runner: trials fill slots in order (schedule.SlotBook), each
asked from a fixed view of the study (sampling.SlotSampler); rung verdicts follow slot
order; once every slot is finished, seeds are raced in stored rounds (racing.py) and the
raced trials' Optuna values become their means (storage.confirm_values). Nothing here
waits: `next_trial` returns None while the schedule holds the next trial back, `verdict`
None while a rung is undecided, and the backends wait (local.py, tabular.py,
ray_backend.py). One driver runs such a study at a time (storage.claim_study).
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..objectives import OBJECTIVES
from . import attrs as A
from .attrs import INTERRUPTED, RACED, ROUND_PREFIX
from .config import StudyConfig
from .jobs import Job, repeat_job
from .racing import Entry, confidence, plan_round
from .repeats import assemble, own_values
from .rungs import vector
from .sampling import slot_seed, view_trials
from .schedule import SlotBook
from .storage import ask, claim_study, confirm_values, release_study, trial_by_number
from .study import Runner

MAX_ATTEMPTS = 10  # a slot asked this often, each time an architecture the study has, keeps the last


class SyncRunner(Runner):
    def __init__(self, cfg: StudyConfig, gpus: Any = None) -> None:
        super().__init__(cfg, gpus)
        try:
            if cfg.storage != "memory://":  # a study in this process's memory has no other driver
                claim_study(self.study, self.driver)
        except BaseException:
            super().close()
            raise
        directions = [o.direction for o in cfg.objectives]
        eta = cfg.fidelity.eta if cfg.fidelity else None
        self.slots = SlotBook(cfg.n_trials, cfg.concurrency, eta, directions)
        self.at_rung: dict[int, tuple[Job, int]] = {}  # trial number -> (trial, rung step) awaiting a verdict
        self._raced = False  # racing has ended (read from the study when it might have)
        self._attempts: dict[int, int] = {}  # slot -> points asked for it so far
        self._load_slots()

    def close(self) -> None:
        release_study(self.study, self.driver)
        super().close()

    # -- the study as stored -----------------------------------------------------------
    def _load_slots(self) -> None:
        """Slots from the stored trials (a resumed study): interrupted trials leave theirs
        open, a duplicate that gave its slot back holds none, and a trial stored without a
        slot (an older study) takes the next in order."""
        counted = [t for t in self.study.get_trials(deepcopy=False) if A.counted(t)]
        taken = {A.slot(t) for t in counted} - {None}
        free = (s for s in range(10**9) if s not in taken)
        for t in counted:
            slot = A.slot(t)
            if slot is not None:
                self._attempts[slot] = max(self._attempts.get(slot, 0), A.attempt(t) + 1)
                if not self._holds(slot, t):
                    continue
            else:
                slot = next(free)
            self.slots.fill(slot, t.number)
            for step, metrics in A.rungs(t).items():
                self.slots.reach(slot, step, vector(self.cfg, t.user_attrs, metrics))
            if t.state.is_finished():
                self.slots.finish(slot)

    def _holds(self, slot: int, trial) -> bool:
        """Whether a trial keeps its slot: all do but a sampled point that repeats an
        architecture the study already has (it costs no training, and teaches the sampler
        nothing), which gives the slot back to be asked again, up to MAX_ATTEMPTS times."""
        sampled = slot >= len(self.cfg.seed_presets)
        return not (A.repeated(trial) and sampled and A.attempt(trial) < MAX_ATTEMPTS - 1)

    def slot_of(self, p: Job) -> int:
        return self.slots.of_number[p.number]

    # -- asking ------------------------------------------------------------------------
    def next_trial(self, running: int = 0) -> Job | None:
        """The next trial to train, None when there is none now: the schedule holds the next
        slot back until the slots C below it finish, a racing round waits for its runs, or
        the study is done (see done())."""
        self.duplicates.settle()
        while (slot := self.slots.next_slot()) is not None:
            if not self.slots.can_ask(slot):
                return None
            prepared = self._ask_slot(slot)
            if prepared is not None:
                return prepared
        return self._next_race_run()

    def _ask_slot(self, slot: int) -> Job | None:
        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        below = {s: by_number[state.number] for s, state in self.slots.slots.items() if s < slot}
        attempt = self._attempts.get(slot, 0)
        self.study.sampler.prepare(slot, view_trials(below, self.slots.view_limit(slot), slot), attempt)
        trial = ask(self.study)
        try:
            self.slots.fill(slot, trial.number)
            trial.set_user_attr(A.SLOT, slot)
            trial.set_user_attr(A.ATTEMPT, attempt)
            prepared = self._prepare(trial)
        except KeyboardInterrupt:  # stopped while the trial was being prepared: recorded, not left RUNNING
            with contextlib.suppress(Exception):
                self.tell_fail(trial, INTERRUPTED)
            raise
        self._attempts[slot] = attempt + 1
        if prepared is None and not self._holds(slot, trial):
            self.slots.vacate(slot)  # a repeated architecture: the slot is asked again
        return prepared

    def finished_original(self, arch_id: str):
        """The first trial of `arch_id` in slot order, once it has finished however it ended
        (trained, stopped at a rung, failed): the same answer whether it finished before this
        trial was asked or while it waited (then duplicates.settle copies it)."""
        firsts = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if A.arch_id(t) == arch_id and A.counted(t) and not A.repeated(t) and t.number in self.slots.of_number
        ]
        if not firsts:
            return None
        first = min(firsts, key=lambda t: self.slots.of_number[t.number])
        return first if first.state.is_finished() else None

    def _within_budget(self, trial) -> bool:
        return True  # one driver, one trial per slot

    def _preset_for(self, trial) -> str | None:
        slot = self.slots.of_number[trial.number]
        return self.cfg.seed_presets[slot] if slot < len(self.cfg.seed_presets) else None

    def finished(self) -> list:
        """The finished trials that hold a slot (those n_trials counts)."""
        holders = {state.number for state in self.slots.slots.values() if state.finished}
        return [t for t in self.study.get_trials(deepcopy=False) if t.number in holders]

    def remaining(self, running: int = 0) -> int:
        return sum(not self.slots.is_finished(s) for s in range(self.cfg.n_trials))

    def done(self) -> bool:
        """Every slot finished, racing ended, nothing in flight."""
        if not self.slots.all_finished() or self.duplicates.waiting or self.repeating or self.queued:
            return False
        if self._racing() and not self._raced:
            self._raced = bool(self.study.user_attrs.get(RACED))
        return not self._racing() or self._raced

    # -- telling -----------------------------------------------------------------------
    def told(self, trial) -> None:
        slot = self.slots.of_number.get(trial.number)
        if slot is not None:
            self.slots.finish(slot)
        self.at_rung.pop(trial.number, None)

    # -- rungs -------------------------------------------------------------------------
    def record_rung(self, p: Job, step: int, metrics: dict[str, Any]) -> None:
        """A trial's figures at a rung: stored with it, and its place in the schedule."""
        p.store_rung(step, metrics)
        self.slots.reach(self.slot_of(p), step, vector(self.cfg, p.costs, metrics))
        self.at_rung[p.number] = (p, step)

    def verdict(self, p: Job, step: int) -> bool | None:
        """Whether `p` goes on from rung `step`; None while the rung is undecided."""
        go = self.slots.verdict(self.slot_of(p), step)
        if go is not None:
            self.at_rung.pop(p.number, None)
            if not go:
                p.stopped_at = step
        return go

    def decided(self) -> list[tuple[Job, int, bool]]:
        """Verdicts that have become known for trials waiting at a rung."""
        out = []
        for p, step in list(self.at_rung.values()):
            go = self.verdict(p, step)
            if go is not None:
                out.append((p, step, go))
        return out

    # -- racing ------------------------------------------------------------------------
    def _racing(self) -> bool:
        return self.cfg.repeats is not None and self.cfg.repeats.seeds >= 2

    def _next_race_run(self) -> Job | None:
        if not self._racing() or not self.slots.all_finished() or self.duplicates.waiting:
            return None
        if not self.queued and not self.repeating:
            self.queued = self._race_round()
        if not self.queued:
            return None
        number, index = self.queued.pop(0)
        return repeat_job(self, trial_by_number(self.study, number), index)

    def repeat_recorded(self) -> None:
        """Nothing to do: the next round is planned when the driver asks for a run."""

    def _race_round(self) -> list[tuple[int, int]]:
        """The runs of the current round not yet recorded; a new round (stored before it
        runs) once the last is complete; [] when racing has ended."""
        attrs = self.study.user_attrs
        if attrs.get(RACED):
            return []
        rounds = sorted(int(k[len(ROUND_PREFIX) :]) for k in attrs if k.startswith(ROUND_PREFIX))
        if rounds:
            missing = [tuple(r) for r in attrs[A.round_key(rounds[-1])] if A.run_key(*r) not in attrs]
            if missing:
                return missing
        spent = sum(len(attrs[A.round_key(r)]) for r in rounds)
        entries, noisy = self._entries(attrs)
        directions = [o.direction for o in self.cfg.objectives]
        rep = self.cfg.repeats
        number = rounds[-1] + 1 if rounds else 0
        plan = plan_round(
            entries, directions, noisy, rep.seeds, rep.confidence, rep.run_budget - spent, slot_seed(self.cfg.seed, number)
        )
        if not plan:
            self._end_racing(entries, noisy, len(rounds), spent)
            return []
        self.study.set_user_attr(A.round_key(number), [list(r) for r in plan])
        return plan

    def _entries(self, attrs: dict) -> tuple[list[Entry], list[bool]]:
        names = [o.name for o in self.cfg.objectives]
        record = assemble(attrs)
        entries = []
        for t in self.study.get_trials(deepcopy=False):
            if t.state.name != "COMPLETE" or not A.trained(t) or t.number not in self.slots.of_number:
                continue
            rows = [own_values(t.values, t.user_attrs, names), *record.get(str(t.number), {}).get("values", [])]
            entries.append(Entry(t.number, self.slots.of_number[t.number], rows))
        noisy = [not (OBJECTIVES.get(n).before_training if n in OBJECTIVES else False) for n in names]
        return entries, noisy

    def _end_racing(self, entries: list[Entry], noisy: list[bool], rounds: int, runs: int) -> None:
        directions = [o.direction for o in self.cfg.objectives]
        conf = confidence(entries, directions, noisy, slot_seed(self.cfg.seed, -1))
        self.study.set_user_attr(A.FRONT_CONFIDENCE, {str(e.number): float(c) for e, c in zip(entries, conf, strict=True)})
        means = {e.number: [float(v) for v in e.mean] for e in entries if e.n > 1}
        for t in self.study.get_trials(deepcopy=False):  # a duplicate shows its original's mean too
            original = A.duplicate_of(t)
            if t.state.name == "COMPLETE" and original in means:
                means[t.number] = means[original]
        confirm_values(self.study, means)
        self.study.set_user_attr(RACED, {"rounds": rounds, "runs": runs})
        self._raced = True
