"""The one-line progress report of a running study (printed after each trial)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..objectives import format_value
from . import attrs as A
from .rungs import front_members

if TYPE_CHECKING:
    from .study import Runner


def status_line(runner: Runner) -> str:
    """Trials finished of n_trials by how they ended, the front's size and best figures, and
    the repeat runs in flight."""
    cfg, states = runner.cfg, runner.states
    trials = runner.finished()
    running = len(runner.running())
    done = sum(t.state == states.COMPLETE for t in trials)
    failed = sum(t.state == states.FAIL for t in trials)
    infeasible = sum(t.state == states.PRUNED and A.infeasible(t) is not None for t in trials)
    stopped = sum(t.state == states.PRUNED and A.infeasible(t) is None for t in trials)
    front = front_members(runner.study, cfg) if done else []
    parts = [
        f"trials {len(trials)}/{cfg.n_trials}: {done} complete, {running} running, "
        f"{failed} failed, {infeasible} infeasible" + (f", {stopped} stopped at a rung" if cfg.fidelity else ""),
        f"front {len(front)}",
    ]
    if runner.repeating or runner.queued:
        parts.append(f"repeating the front: {len(runner.repeating)} running, {len(runner.queued)} queued")
    for i, o in enumerate(cfg.objectives):
        if front:
            pick = max if o.direction == "maximize" else min
            best = pick(m.values[i] for m in front)
            parts.append(f"{'best' if o.direction == 'maximize' else 'min'} {o.name} {format_value(o.name, best)}")
    return " | ".join(parts)
