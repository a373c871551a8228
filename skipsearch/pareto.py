"""Pareto fronts as plain data: non-dominated sets, hypervolume and its history.

Everything works on an (n, k) array of objective values and k directions ("maximize" or
"minimize"); internally values are turned into a minimisation problem. No plotting here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_min(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(signs)) * signs


def non_dominated(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the points no other point dominates (duplicates are all kept)."""
    v = _as_min(values, directions)
    n = len(v)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort(v.T[::-1])  # by the first objective, ties by the next
    front: list[int] = []
    for i in order:  # a point can only be dominated by one sorted before it
        p = v[i]
        if front:
            f = v[front]
            if np.any(np.all(f <= p, axis=1) & np.any(f < p, axis=1)):
                keep[i] = False
                continue
        front.append(i)
    return keep


def default_reference(values: np.ndarray, directions: Sequence[str], margin: float = 0.1) -> np.ndarray:
    """The worst value of each objective, pushed outwards by `margin` of its range."""
    v = _as_min(values, directions)
    worst, best = v.max(axis=0), v.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    ref_min = worst + margin * span
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return ref_min * signs


def _hv_min(points: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by `points` (minimisation) and bounded by `ref`."""
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    k = points.shape[1]
    if k == 1:
        return float(ref[0] - points[:, 0].min())
    if k == 2:
        pts = points[np.lexsort((points[:, 1], points[:, 0]))]
        volume, best_y = 0.0, ref[1]
        for x, y in pts:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    # slice along the last objective: between consecutive levels the section is the
    # (k-1)-dimensional volume of every point at or below the level
    pts = points[np.argsort(points[:, -1])]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        if upper > pts[i, -1]:
            section = pts[: i + 1, :-1]
            volume += _hv_min(section[non_dominated(section, ["minimize"] * (k - 1))], ref[:-1]) * (upper - pts[i, -1])
    return float(volume)


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Volume of objective space dominated by `values` and dominating `reference`."""
    v = _as_min(values, directions)
    ref = _as_min(np.asarray(reference, dtype=float), directions)[0]
    if len(v) == 0:
        return 0.0
    return _hv_min(v[non_dominated(v, ["minimize"] * v.shape[1])], ref)


def hypervolume_history(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> np.ndarray:
    """Hypervolume of the first i points, for i = 1..n (points in trial order)."""
    v = _as_min(values, directions)
    ref = _as_min(np.asarray(reference, dtype=float), directions)[0]
    minimize = ["minimize"] * v.shape[1] if v.ndim == 2 and len(v) else []
    out = np.zeros(len(v))
    front = np.empty((0, v.shape[1] if v.ndim == 2 else 0))
    current = 0.0
    for i, p in enumerate(v):
        dominated = len(front) and np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1))
        if not dominated:
            front = np.vstack([front[~(np.all(p <= front, axis=1) & np.any(p < front, axis=1))], p])
            current = _hv_min(front, ref) if minimize else 0.0
        out[i] = current
    return out
