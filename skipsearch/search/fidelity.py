"""Pareto-aware asynchronous successive halving (ASHA with multi-objective ranking).

Study key ``fidelity: {type: asha, min_steps: M, eta: E}``: rungs at M, M*E, M*E^2, ...
below budget.steps. At each rung a trial is scored on the validation set; it goes on only
if it is in the top ceil(n / eta) of the n trials that have reached that rung so far,
ranked by Pareto rank (non-dominated sorting on the study's objectives: cost objectives
exact, as they are known from the spec; metrics as measured at that rung) and, within a
rank, by hypervolume contribution. The first trial at a rung always goes on (as in
asynchronous SH: nothing to compare with yet). A stopped trial is PRUNED, never on the
front. Anchors: ASHA (Li et al. 2020), MOASHA's non-dominated ranking at rungs.

Everything here is plain data (NumPy); the runner supplies the vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..pareto import default_reference, hypervolume, non_dominated


@dataclass(frozen=True)
class Fidelity:
    min_steps: int
    eta: int

    def rungs(self, steps: int) -> list[int]:
        """Rung steps below `steps` (the full budget is the last, implicit rung)."""
        out, r = [], self.min_steps
        while r < steps:
            out.append(r)
            r *= self.eta
        return out

    def to_dict(self) -> dict:
        return {"type": "asha", "min_steps": self.min_steps, "eta": self.eta}


def pareto_ranks(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: 0 for the first front, 1 for the next, ..."""
    values = np.asarray(values, dtype=float)
    ranks = np.full(len(values), -1)
    left = np.arange(len(values))
    rank = 0
    while len(left):
        front = non_dominated(values[left], directions)
        ranks[left[front]] = rank
        left = left[~front]
        rank += 1
    return ranks


def contributions(values: np.ndarray, directions: Sequence[str], reference: np.ndarray) -> np.ndarray:
    """Each point's exclusive hypervolume contribution within `values` (one front)."""
    total = hypervolume(values, directions, reference)
    idx = np.arange(len(values))
    return np.array([total - hypervolume(values[idx != i], directions, reference) for i in idx])


def order(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Indices from best to worst: by Pareto rank, then by hypervolume contribution."""
    values = np.asarray(values, dtype=float)
    ranks = pareto_ranks(values, directions)
    reference = default_reference(values, directions)
    contrib = np.zeros(len(values))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        contrib[members] = contributions(values[members], directions, reference)
    return np.lexsort((-contrib, ranks))  # last key first: rank, then larger contribution


def goes_on(new: Sequence[float], others: np.ndarray, directions: Sequence[str], eta: int) -> bool:
    """Whether a trial with objective vector `new` at a rung is in the top ceil(n / eta) of
    the n trials at that rung (`others` are the ones that reached it before)."""
    others = np.asarray(others, dtype=float).reshape(-1, len(directions))
    if len(others) == 0:
        return True
    values = np.vstack([others, np.asarray(new, dtype=float)])
    keep = math.ceil(len(values) / eta)
    position = int(np.flatnonzero(order(values, directions) == len(values) - 1)[0])
    return position < keep
