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


@dataclass(frozen=True)
class Repeats:
    seeds: int  # evaluations per front member, the first run included
    top: int  # at most this many front members are repeated

    def to_dict(self) -> dict:
        return {"seeds": self.seeds, "top": self.top}


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


RUN_PREFIX = "repeat:"  # study attribute repeat:<trial number>:<seed index> -> {"seed", "values" | "failure"}
CLAIM_PREFIX = "repeat-claim:"  # -> the driver training that run


def run_key(number: int, index: int) -> str:
    return f"{RUN_PREFIX}{number}:{index}"


def claim_key(number: int, index: int) -> str:
    return f"{CLAIM_PREFIX}{number}:{index}"


def assemble(attrs: dict) -> dict[str, dict]:
    """{trial number: {"seeds": [...], "values": [[...], ...], "failures": [...]}} from a
    study's attributes, runs in seed-index order (and the single "repeats" record of
    studies written before one key per run)."""
    out: dict[str, dict] = {k: {**v} for k, v in (attrs.get("repeats") or {}).items()}
    runs = []
    for key, run in attrs.items():
        if key.startswith(RUN_PREFIX):
            number, index = key[len(RUN_PREFIX) :].split(":")
            runs.append((int(number), int(index), run))
    for number, _, run in sorted(runs, key=lambda r: r[:2]):
        entry = out.setdefault(str(number), {"seeds": [], "values": []})
        if "values" in run:
            entry["seeds"] = [*entry.get("seeds", []), run["seed"]]
            entry["values"] = [*entry.get("values", []), run["values"]]
        else:
            entry["failures"] = [*entry.get("failures", []), run["failure"]]
    return out
