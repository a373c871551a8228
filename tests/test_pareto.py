"""Pareto data against brute force on random point sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from skipsearch.pareto import default_reference, hypervolume, hypervolume_history, non_dominated


def brute_front(v: np.ndarray, directions) -> np.ndarray:
    s = np.array([-1 if d == "maximize" else 1 for d in directions])
    m = v * s
    return np.array(
        [not any(np.all(m[j] <= m[i]) and np.any(m[j] < m[i]) for j in range(len(m)) if j != i) for i in range(len(m))]
    )


def brute_hv(v: np.ndarray, directions, ref, grid: int = 0) -> float:
    """Exact hypervolume by inclusion-exclusion over the points (small sets only)."""
    s = np.array([-1 if d == "maximize" else 1 for d in directions])
    m, r = v * s, np.asarray(ref) * s
    m = m[np.all(m < r, axis=1)]
    total = 0.0
    for size in range(1, len(m) + 1):
        for subset in itertools.combinations(range(len(m)), size):
            corner = m[list(subset)].max(axis=0)
            total += (-1) ** (size + 1) * np.prod(r - corner)
    return total


DIRS = [["minimize", "minimize"], ["maximize", "minimize"], ["maximize", "minimize", "minimize"], ["minimize"] * 4]


@pytest.mark.parametrize("directions", DIRS, ids=lambda d: "-".join(x[:3] for x in d))
@pytest.mark.parametrize("seed", range(5))
def test_front_and_hypervolume_match_brute_force(directions, seed):
    rng = np.random.default_rng(seed)
    k = len(directions)
    v = rng.random((10, k))
    if seed % 2:  # ties and duplicates
        v = np.round(v * 4) / 4
        v[3] = v[7]
    assert np.array_equal(non_dominated(v, directions), brute_front(v, directions))
    ref = default_reference(v, directions)
    assert hypervolume(v, directions, ref) == pytest.approx(brute_hv(v, directions, ref), rel=1e-9, abs=1e-12)


def test_hypervolume_by_hand():
    # two points, minimisation, reference (1, 1): 0.5 * 1 + 0.5 * 0.5 = ... union of boxes
    v = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert hypervolume(v, ["minimize", "minimize"], [1, 1]) == pytest.approx(0.75)
    assert hypervolume(np.array([[2.0, 2.0]]), ["minimize", "minimize"], [1, 1]) == 0.0


def test_history_is_monotone_and_ends_at_the_total():
    rng = np.random.default_rng(3)
    v = rng.random((40, 3))
    d = ["maximize", "minimize", "minimize"]
    ref = default_reference(v, d)
    h = hypervolume_history(v, d, ref)
    assert np.all(np.diff(h) >= -1e-12)
    assert h[-1] == pytest.approx(hypervolume(v, d, ref))
    assert h[9] == pytest.approx(hypervolume(v[:10], d, ref))


def test_large_two_objective_front_is_fast_enough_to_compute():
    rng = np.random.default_rng(0)
    v = rng.random((5000, 2))
    mask = non_dominated(v, ["maximize", "minimize"])
    assert 1 <= mask.sum() < 100
