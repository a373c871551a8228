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
