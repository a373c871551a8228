"""The study side of fidelity and repeats: what is recorded where, and the decisions.

Rungs: a running trial records what it scored at each rung in its user attribute `rungs`
({step: {metric: value}}) and its `curve`; the decision at a rung compares it with every
trial of the study that reached that rung (finished, stopped or running, by any driver),
so a resumed or second driver decides from the same evidence.

Repeats: Optuna does not let a finished trial change, so the extra seeds of a front member
are kept in the study's user attributes, one key per run (repeats.py), and its
`front_confidence` ({number: share}); results, dashboard, export and model card read a
trial's values as the mean over its seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..objectives import OBJECTIVES
from . import attrs as A
from .attrs import claim_key, run_key
from .config import StudyConfig
from .fidelity import goes_on
from .repeats import assemble, front_confidence, own_values, seed_of

REFRESH_S = 2.0  # how stale the rung evidence of other trials may be (other drivers)


def vector(cfg: StudyConfig, costs: dict[str, Any], metrics: dict[str, Any]) -> list[float] | None:
    """The study's objective vector from a trial's known costs and the metrics at a step
    (None when a figure is missing)."""
    out = []
    for o in cfg.objectives:
        known = OBJECTIVES.get(o.name).before_training if o.name in OBJECTIVES else False
        value = costs.get(o.name) if known else metrics.get(o.name)
        if value is None or not math.isfinite(float(value)):
            return None
        out.append(float(value))
    return out


class RungBook:
    """Rung evidence of a study, cached for REFRESH_S seconds between reads."""

    def __init__(self, study, cfg: StudyConfig) -> None:
        self.study, self.cfg = study, cfg
        self.read_at = -math.inf
        self.evidence: dict[int, dict[int, list[float]]] = {}  # step -> trial number -> vector

    def _refresh(self) -> None:
        if time.monotonic() - self.read_at < REFRESH_S:
            return
        evidence: dict[int, dict[int, list[float]]] = {}
        for t in self.study.get_trials(deepcopy=False):
            for step, metrics in A.rungs(t).items():
                v = vector(self.cfg, t.user_attrs, metrics)
                if v is not None:
                    evidence.setdefault(int(step), {})[t.number] = v
        self.evidence, self.read_at = evidence, time.monotonic()

    def decide(self, trial, costs: dict[str, Any], step: int, metrics: dict[str, Any]) -> bool:
        """Whether `trial`, whose figures at `step` are recorded (Runner.store_rung), goes on."""
        self._refresh()
        mine = vector(self.cfg, costs, metrics)
        if mine is None:
            return True  # nothing to rank on: let the trial finish and be judged at the end
        others = [v for n, v in self.evidence.get(step, {}).items() if n != trial.number]
        directions = [o.direction for o in self.cfg.objectives]
        verdict = goes_on(mine, np.array(others).reshape(-1, len(directions)), directions, self.cfg.fidelity.eta)
        self.evidence.setdefault(step, {})[trial.number] = mine
        return verdict


# -- repeats ------------------------------------------------------------------------------
def repeat_record(study) -> dict[str, Any]:
    return assemble(study.user_attrs)


def mean_values(record: dict[str, Any], number: int, values: list[float]) -> tuple[list[float], list[list[float]]]:
    """A trial's values as the mean over its seeds (its own run first: `values`, see
    trial_values), and the per-seed rows; `record` is repeat_record(study)."""
    rows = [list(values)] + [list(v) for v in record.get(str(number), {}).get("values", [])]
    return [float(x) for x in np.mean(rows, axis=0)], rows


def own(t, cfg: StudyConfig) -> list[float]:
    """A trial's values from its own run (a raced trial's Optuna values are its means)."""
    return own_values(t.values, t.user_attrs, [o.name for o in cfg.objectives])


def pending_repeats(study, cfg: StudyConfig, live: Callable[[str], bool] = lambda driver: False) -> list[tuple[int, int]]:
    """(trial number, seed index) still to train: the current front on mean values, the
    most accurate first, at most repeats.top members, each up to repeats.seeds runs. A run
    already done or failed, or claimed by a driver that `live` says is running, is not."""
    if cfg.repeats is None or cfg.repeats.seeds < 2:
        return []
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and A.trained(t)]
    if not done:
        return []
    from ..pareto import non_dominated

    attrs = study.user_attrs
    record = assemble(attrs)
    directions = [o.direction for o in cfg.objectives]
    means = np.array([mean_values(record, t.number, own(t, cfg))[0] for t in done])
    front = [t for t, on in zip(done, non_dominated(means, directions), strict=True) if on]
    sign = -1 if directions[0] == "maximize" else 1
    front.sort(key=lambda t: sign * mean_values(record, t.number, own(t, cfg))[0][0])
    out = []
    for t in front[: cfg.repeats.top]:
        for i in range(1, cfg.repeats.seeds):
            claimed = attrs.get(claim_key(t.number, i))
            if run_key(t.number, i) not in attrs and not (claimed and live(claimed)):
                out.append((t.number, i))
    return out


def claim_repeat(study, repeat: tuple[int, int], driver: str, live: Callable[[str], bool]) -> bool:
    """Mark a repeat run as this driver's; False when it is done, or claimed by another
    driver that `live` says is running, or another driver's claim won the write (both
    wrote: the stored value is the last one)."""
    attrs, key = study.user_attrs, claim_key(*repeat)
    holder = attrs.get(key)
    if run_key(*repeat) in attrs or (holder not in (None, driver) and live(holder)):
        return False
    study.set_user_attr(key, driver)
    return study.user_attrs.get(key) == driver


def record_repeat(study, cfg: StudyConfig, number: int, index: int, values: list[float]) -> None:
    run = {"seed": seed_of(cfg.budget.seed, index), "values": [float(v) for v in values]}
    study.set_user_attr(run_key(number, index), run)


def record_repeat_failure(study, cfg: StudyConfig, repeat: tuple[int, int], reason: str) -> None:
    study.set_user_attr(run_key(*repeat), {"seed": seed_of(cfg.budget.seed, repeat[1]), "failure": reason[:500]})


def update_confidence(study, cfg: StudyConfig, resamples: int = 1000) -> dict[str, float]:
    """Bootstrap share of resamples in which each repeated front member stays on the front."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and A.trained(t)]
    record = repeat_record(study)
    if not done or not record:
        return {}
    runs = [np.array(mean_values(record, t.number, own(t, cfg))[1]) for t in done]
    conf = front_confidence(runs, [o.direction for o in cfg.objectives], resamples=resamples, seed=cfg.seed)
    out = {str(t.number): float(c) for t, c in zip(done, conf, strict=True) if str(t.number) in record}
    study.set_user_attr(A.FRONT_CONFIDENCE, out)
    return out


@dataclass
class FrontMember:
    trial: Any  # optuna.FrozenTrial
    values: list[float]  # the objective values: means over its seeds
    seeds: list[list[float]]  # the objective values of each seed (the trial's own run first)
    confidence: float | None  # bootstrap share of seed resamples that keep it on the front

    @property
    def number(self) -> int:
        return self.trial.number


def front_members(study, cfg: StudyConfig) -> list[FrontMember]:
    """The Pareto front of the study's trained architectures (each once, feasible), on the
    means over their seeds, the most accurate (first objective) first."""
    from ..pareto import non_dominated

    trained = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and A.trained(t)]
    if not trained:
        return []
    attrs = study.user_attrs
    record, confidence = assemble(attrs), A.front_confidence(attrs)
    members = [FrontMember(t, *mean_values(record, t.number, own(t, cfg)), confidence.get(str(t.number))) for t in trained]
    directions = [o.direction for o in cfg.objectives]
    on = non_dominated(np.array([m.values for m in members]), directions)
    sign = -1 if directions[0] == "maximize" else 1
    return sorted((m for m, keep in zip(members, on, strict=True) if keep), key=lambda m: sign * m.values[0])
