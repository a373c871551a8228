"""The tabular benchmark: a trial answered from a table instead of trained.

bench/tabular.py trains every architecture of a fixed space on `shapes` at a fixed budget
with several seeds and records every metric at every rung step (the table ships as
bench/data/tabular-shapes.json.gz). The `tabular` backend answers a trial from that table:
the metrics at the steps the trial reaches, for one of the table's seeds drawn
reproducibly from the study seed and the trial number. A study then runs in seconds, so
samplers and fidelity schemes can be compared on equal terms (as NAS-Bench-201 and
HW-NAS-Bench do). The table must cover the study: same task and budget, and every
architecture the search space can produce.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError, UserError
from . import attrs as A

MAX_TABLE_BYTES = 256 * 2**20  # decompressed; the shipped table is a few MiB
BUDGET_KEYS = ("steps", "batch", "size", "lr", "optimizer", "weight_decay", "grad_clip", "min_lr")


@dataclass
class Table:
    path: Path
    data: dict[str, Any]
    entries: dict[str, dict[str, Any]]  # by arch id

    @classmethod
    def load(cls, path: str | Path) -> Table:
        path = Path(path)
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read(MAX_TABLE_BYTES + 1)  # bounded: a gzip bomb is refused, not expanded
            if len(raw) > MAX_TABLE_BYTES:
                raise ValueError(f"more than {MAX_TABLE_BYTES:,} bytes once decompressed")
            data = json.loads(raw.decode("utf-8"))
            entries = {e["arch_id"]: e for e in data["entries"]}
            if not data["rung_steps"] or not data["seeds"]:
                raise ValueError("no rung steps or no seeds")
        except FileNotFoundError:
            raise UserError(f"{path}: tabular benchmark file not found") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not a tabular benchmark file ({type(err).__name__}: {err})") from None
        return cls(path, data, entries)

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.data["seeds"]]

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.data["rung_steps"]]

    def metrics_at(self, arch_id: str, seed: int, step: int) -> dict[str, float]:
        return dict(self.entries[arch_id]["runs"][str(seed)]["metrics_at"][str(step)])

    def true_values(self, arch_id: str, name: str) -> float:
        """The mean over seeds at the full budget (the table's 'true' figure)."""
        final = str(self.steps[-1])
        runs = self.entries[arch_id]["runs"].values()
        return sum(r["metrics_at"][final][name] for r in runs) / len(runs)

    def check_covers(self, cfg, task) -> None:
        """UserError unless the table answers every trial of this study exactly."""
        where = f"{cfg.path}: tabular backend ({self.path.name})"
        measured = cfg.asked("worker")
        if measured:
            raise UserError(f"{where}: {measured[0]} is measured on a trial's device, which the table has not recorded")
        if task.describe() != self.data.get("task"):
            raise UserError(f"{where}: task {task.describe()} differs from the table's {self.data.get('task')}")
        mine, theirs = cfg.budget.to_dict(), self.data.get("budget", {})
        for key in BUDGET_KEYS:
            if _norm(mine.get(key)) != _norm(theirs.get(key)):
                raise UserError(f"{where}: budget.{key} {mine.get(key)!r} differs from the table's {theirs.get(key)!r}")
        if cfg.fidelity is not None:
            missing = [r for r in cfg.fidelity.rungs(cfg.budget.steps) if r not in self.steps]
            if missing:
                raise UserError(f"{where}: fidelity rung {missing[0]} is not a step of the table ({self.steps})")
        for spec in enumerate_space(cfg.space, task):
            if spec.arch_id not in self.entries:
                raise UserError(f"{where}: the space holds {spec.summary()} ({spec.arch_id}), which the table lacks")
        from ..presets import preset

        for name in cfg.seed_presets:
            if task.adapt(preset(name)).arch_id not in self.entries:
                raise UserError(
                    f"{where}: seed_presets: {name!r} is not in the table; allowed: presets that are points of the space"
                )

    def answer(self, arch_id: str, seed: int, budget_steps: int, rungs: list[int], on_rung: Callable) -> dict[str, Any]:
        """What evaluate() would return, read from the table (stopping at a rung when
        on_rung says so)."""
        training = self.training(arch_id, seed, budget_steps, rungs)
        try:
            step, metrics = next(training)
            while True:
                step, metrics = training.send(bool(on_rung(step, metrics)))
        except StopIteration as end:
            return end.value

    def training(self, arch_id: str, seed: int, budget_steps: int, rungs: list[int]):
        """answer() as a generator (pool.py): yields (step, metrics) at each rung, is sent
        whether to go on, returns the result."""
        run = self.entries[arch_id]["runs"][str(seed)]
        per_step = run["train_time_s"] / budget_steps
        stopped = None
        for step in rungs:
            metrics = {**self.metrics_at(arch_id, seed, step), "train_time_s": per_step * step, "steps": step}
            if not (yield step, metrics):
                stopped = step
                break
        step = stopped or budget_steps
        metrics = self.metrics_at(arch_id, seed, step)
        primary = self.data.get("primary", "dice")
        curve = [[s, self.metrics_at(arch_id, seed, s)[primary]] for s in [*rungs, budget_steps] if s <= step]
        return {
            **metrics,
            "train_time_s": per_step * step,
            "images_per_s": step * self.data["budget"]["batch"] / max(per_step * step, 1e-9),
            "steps": step,
            "curve": curve,
            A.STOPPED_AT: stopped,
            "device": "table",
            A.WEIGHTS: None,
            "table_seed": seed,
        }

    def seconds_per_step(self, arch_id: str, seed: int, budget_steps: int) -> float:
        return self.entries[arch_id]["runs"][str(seed)]["train_time_s"] / budget_steps


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value))


def run_tabular(runner, report: Callable[[str], None], table: Table, timing: int | None = None):
    """The study's trials answered from `table`. With schedule: sync (or any schedule when
    `timing` is given), `concurrency` workers are simulated (pool.py): each trial takes the
    seconds per step the table recorded for it, scaled by a factor drawn from `timing`
    (None: as recorded), and the pool's Idle (the idle cost of the schedule) is returned.
    With schedule: async and no `timing`, one trial at a time."""
    steps, every = runner.cfg.budget.steps, max(1, runner.cfg.n_trials // 20)

    def seed_and_rungs(p) -> tuple[int, list[int]]:
        own = seed_for(runner.cfg.seed, runner.slot_of(p), table.seeds)
        if not p.seed_index:
            return own, p.rung_steps
        others = [s for s in table.seeds if s != own] or table.seeds  # a repeat takes the other seeds in turn
        return others[(p.seed_index - 1) % len(others)], []

    if runner.cfg.schedule == "sync" or timing is not None:
        from .pool import Pool

        def start(p):
            seed, rungs = seed_and_rungs(p)
            per_step = table.seconds_per_step(p.spec.arch_id, seed, steps)
            if timing is not None:
                repeat = (p.number, p.seed_index) if p.seed_index else None
                per_step *= random.Random(f"timing-{timing}-{p.number}-{repeat}").lognormvariate(0.0, 0.5)
            return table.training(p.spec.arch_id, seed, steps, rungs), per_step

        return Pool(runner, runner.cfg.concurrency, start).run()
    while (p := runner.next_trial()) is not None:
        seed, rungs = seed_and_rungs(p)
        p.finish(table.answer(p.spec.arch_id, seed, steps, rungs, p.rung))
        if p.number % every == 0:
            report(runner.status())
    return None


def seed_for(study_seed: int, number: int, seeds: list[int]) -> int:
    """The table seed a trial is answered with: reproducible from study seed and number."""
    return random.Random(f"{study_seed}-{number}").choice(seeds)


def enumerate_space(space, task) -> list:
    """Every valid architecture of a space of choice and fixed dimensions (conditional
    dimensions followed); UserError for a space with ranges, which no table can cover."""
    ranged = [d.name for d in space.dims if d.kind in ("int", "float")]
    if ranged:
        raise UserError(f"{space.source}: params.{ranged[0]}: a range; allowed with a table: choice or fixed values")
    out: dict[str, Any] = {}
    for point in _points(space.dims, {}):
        try:
            spec = space.to_spec(point, task)
        except SpecError:
            continue  # an invalid combination: the study records it as such, untrained
        out.setdefault(spec.arch_id, spec)
    return list(out.values())


def _points(dims, point: dict[str, Any]):
    if not dims:
        yield dict(point)
        return
    dim, rest = dims[0], dims[1:]
    if not dim.active(point):
        yield from _points(rest, point)
        return
    for value in dim.values:
        point[dim.name] = value
        yield from _points(rest, point)
        del point[dim.name]


__all__ = ["Table", "enumerate_space", "run_tabular", "seed_for"]
