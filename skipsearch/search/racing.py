"""Seed racing: more seeds only where the front is undecided (``schedule: sync``).

Study key ``repeats: {max_seeds: S, confidence: C, runs: N}``. Once the study has all its
trials, seeds are raced in rounds. Each round looks at every trained architecture's mean
over its seeds so far and at its *confidence*: the share of 2,000 draws in which it is on
the front of the means, each draw adding to every mean a normal error of the pooled seed
standard deviation / sqrt(its seeds) (a parametric bootstrap: with two or three seeds an
architecture's own spread says little, the pooled one is steadier; the exact costs get no
error). An architecture is decided once its confidence is >= C (on the front, with at least
two seeds: one lucky run of an architecture that varies more than most is not trusted on the
pooled spread alone) or <= 1 - C (off it). The round gives one more seed to each undecided architecture with fewer than S
seeds, most undecided first (confidence nearest 1/2, then slot), until N runs are spent.
The first round, before any spread is known, gives a second seed to the front's members.
Racing ends with a round that has nothing to run.

Everything here is plain data: a round's plan is a function of the finished runs, and is
stored before it runs (the runner), so a resumed study races exactly as an uninterrupted
one. ``{seeds: S, top: K}`` of earlier versions reads as max_seeds S, runs K x (S - 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..pareto import non_dominated

DRAWS = 2000


@dataclass(frozen=True)
class Entry:
    """One trained architecture: its trial, slot and per-seed objective vectors."""

    number: int
    slot: int
    rows: list[list[float]]  # its own run first

    @property
    def mean(self) -> np.ndarray:
        return np.mean(np.asarray(self.rows, dtype=float), axis=0)

    @property
    def n(self) -> int:
        return len(self.rows)


def pooled_sd(entries: Sequence[Entry], k: int) -> np.ndarray | None:
    """The pooled within-architecture standard deviation of each objective (None until an
    architecture has two seeds)."""
    dof, ss = 0, np.zeros(k)
    for e in entries:
        if e.n >= 2:
            rows = np.asarray(e.rows, dtype=float)
            ss += ((rows - rows.mean(axis=0)) ** 2).sum(axis=0)
            dof += e.n - 1
    return None if dof == 0 else np.sqrt(ss / dof)


def confidence(entries: Sequence[Entry], directions: Sequence[str], noisy: Sequence[bool], seed: int) -> np.ndarray:
    """Each entry's share of draws in which its mean is on the front."""
    if not entries:
        return np.zeros(0)
    means = np.array([e.mean for e in entries])
    sd = pooled_sd(entries, len(directions))
    if sd is None:
        return non_dominated(means, directions).astype(float)
    scale = (sd * np.asarray(noisy, dtype=float))[None, :] / np.sqrt([[e.n] for e in entries])
    rng = np.random.default_rng(seed)
    hits = np.zeros(len(entries))
    for _ in range(DRAWS):
        hits += non_dominated(means + rng.standard_normal(means.shape) * scale, directions)
    return hits / DRAWS


def plan_round(
    entries: Sequence[Entry],
    directions: Sequence[str],
    noisy: Sequence[bool],
    max_seeds: int,
    level: float,
    runs_left: int,
    seed: int,
) -> list[tuple[int, int]]:
    """The next round's runs: (trial number, seed index), most undecided first."""
    if runs_left <= 0 or not entries:
        return []
    if pooled_sd(entries, len(directions)) is None:  # nothing repeated yet: the front's members first
        on = non_dominated(np.array([e.mean for e in entries]), directions)
        sign = -1 if directions[0] == "maximize" else 1
        picked = sorted((e for e, keep in zip(entries, on, strict=True) if keep), key=lambda e: (sign * e.mean[0], e.slot))
        return [(e.number, e.n) for e in picked if e.n < max_seeds][:runs_left]
    conf = confidence(entries, directions, noisy, seed)
    # a likely member with a single seed is not decided by the pooled spread alone: one lucky
    # run of an architecture that varies more than most would stand unchallenged
    open_ = [
        (abs(c - 0.5), e.slot, e)
        for e, c in zip(entries, conf, strict=True)
        if (1 - level < c < level or (c >= level and e.n < 2)) and e.n < max_seeds
    ]
    return [(e.number, e.n) for _, _, e in sorted(open_, key=lambda x: x[:2])][:runs_left]
