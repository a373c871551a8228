"""Repeated evaluation of the front: seeds, means, spread, and confidence of being on it.

Study key ``repeats: {seeds: S, top: K}``: once the study has its trials, the members of
the current front (at most K, the most accurate first) are trained again with S - 1
further seeds (other initialisation and data order); a trial's objective values become
the means over its seeds, its user attributes keep the per-seed values (``seeds``) and
their standard deviation (``<metric>_std``), and the front is recomputed on the means.

A front member's confidence is the share of bootstrap resamples (each trial's seed values
drawn with replacement, then averaged) in which it stays on the front: 1.0 means no
plausible reshuffle of the seeds moves it off; a single-seed trial has no spread of its
own, so its figure reflects only the others' uncertainty.

Optuna does not let a finished trial change, so the runs are kept in the study's user
attributes, one key per run (``repeat:<number>:<index>``: its seed and values, or why it
failed): several drivers on one study write different keys and never overwrite each
other's runs. ``assemble`` turns the keys into one record per trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..pareto import non_dominated
from . import attrs as A


@dataclass(frozen=True)
class Repeats:
    """Extra seeds for the front. ``{max_seeds: S, confidence: C, runs: N}`` races seeds
    (racing.py, schedule: sync); ``{seeds: S, top: K}`` is the same with N = K x (S - 1),
    and with schedule: async it trains the front's K most accurate members S times each."""

    seeds: int  # evaluations per architecture at most, the first run included
    top: int | None = None  # {seeds, top}: at most this many front members (schedule: async)
    confidence: float = 0.9  # decided once the share of draws on (off) the front is >= C (<= 1 - C)
    runs: int | None = None  # extra runs in all (None: as many as racing asks for)

    @property
    def run_budget(self) -> int:
        if self.runs is not None:
            return self.runs
        return self.top * (self.seeds - 1) if self.top is not None else 10**9

    def to_dict(self) -> dict:
        if self.top is not None and self.runs is None and self.confidence == 0.9:
            return {"seeds": self.seeds, "top": self.top}
        return {"max_seeds": self.seeds, "confidence": self.confidence, **({"runs": self.runs} if self.runs is not None else {})}


def own_values(values: list[float] | None, attrs: dict, objectives: list[str]) -> list[float] | None:
    """A trial's values from its own (first-seed) run: its stored figures, since a raced
    trial's Optuna values become the mean over its seeds once racing ends (a duplicate
    carries its original's figures)."""
    if values is not None and all(isinstance(attrs.get(n), int | float) for n in objectives):
        return [float(attrs[n]) for n in objectives]
    return values


def seed_of(base: int, index: int) -> int:
    """The training seed of a trial's index-th evaluation (index 0: the study's own)."""
    return base + 1000 * index


def front_confidence(runs: Sequence[np.ndarray], directions: Sequence[str], resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """For each trial (rows of its per-seed objective vectors), the share of bootstrap
    resamples in which its mean vector is on the front."""
    rng = np.random.default_rng(seed)
    runs = [np.asarray(r, dtype=float).reshape(-1, len(directions)) for r in runs]
    hits = np.zeros(len(runs))
    for _ in range(resamples):
        means = np.array([r[rng.integers(len(r), size=len(r))].mean(axis=0) for r in runs])
        hits += non_dominated(means, directions)
    return hits / resamples


def assemble(attrs: dict) -> dict[str, dict]:
    """{trial number: {"seeds": [...], "values": [[...], ...], "failures": [...]}} from a
    study's attributes, runs in seed-index order (and the single "repeats" record of
    studies written before one key per run)."""
    out: dict[str, dict] = {k: {**v} for k, v in (attrs.get(A.REPEATS) or {}).items()}
    runs = []
    for key, run in attrs.items():
        if key.startswith(A.RUN_PREFIX):
            number, index = key[len(A.RUN_PREFIX) :].split(":")
            runs.append((int(number), int(index), run))
    for number, _, run in sorted(runs, key=lambda r: r[:2]):
        entry = out.setdefault(str(number), {"seeds": [], "values": []})
        if "values" in run:
            entry["seeds"] = [*entry.get("seeds", []), run["seed"]]
            entry["values"] = [*entry.get("values", []), run["values"]]
        else:
            entry["failures"] = [*entry.get("failures", []), run["failure"]]
    return out
