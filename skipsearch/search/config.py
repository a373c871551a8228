"""Study files: what to search, on which task, for which objectives, with which budget.

    name: quickstart
    task: shapes                      # or {name: folder-seg, data: ../data/kvasir, classes: 2}
    space: ../search_spaces/tiny.yaml
    objectives: [dice, skip_memory_bytes]       # or {name: ..., direction: ...}
    constraints: [{objective: skip_memory_bytes, max: 2 MiB}]
    sampler: tpe                                # tpe (default) | nsga2 | gp | random
    n_trials: 12
    budget: {steps: 60, batch: 8, size: [48, 48]}
    resources: {cpus: 1, gpus: 0}
    concurrency: 2
    seed: 0
    seed_presets: [tiny-naf]

Relative paths are relative to the study file. Outputs go to `out` (default: a folder
named after the study next to the YAML), the study itself to `storage` (default: a
SQLite file there). Everything is checked here, before any stored study is opened:
each problem is one UserError naming the file, the field, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import read_yaml
from ..tasks import Task, make_task
from ..train import Budget
from .fidelity import Fidelity
from .fields import FIELDS, MAX_TRIALS, Constraint, Objective, StudyFileReader, did_you_mean
from .repeats import Repeats
from .space import SearchSpace

__all__ = ["MAX_TRIALS", "Constraint", "Objective", "StudyConfig", "load_study"]


@dataclass
class StudyConfig:
    name: str
    path: Path
    task_name: str
    task_options: dict[str, Any]
    space: SearchSpace
    objectives: list[Objective]
    constraints: list[Constraint]
    sampler: dict[str, Any]
    n_trials: int
    budget: Budget
    reference_input: tuple[int, ...]  # [C, H, W], or [C, D, H, W] for a volume task
    cpus: float = 1
    gpus: float | str = 0  # a number, or "auto": packed by predicted training memory (gpus.py)
    gpu_packing: Any = None  # gpus.Packing when gpus is "auto"
    concurrency: int = 1
    seed: int = 0
    seed_presets: list[str] = field(default_factory=list)
    storage: str = ""
    out: Path = Path(".")
    description: str = ""
    fidelity: Fidelity | None = None
    repeats: Repeats | None = None
    table: Path | None = None  # a tabular benchmark file, for the tabular backend
    schedule: str = "sync"  # sync: repeatable (schedule.py); async: decisions as trials arrive

    def make_task(self) -> Task:
        checked = _CHECKED.get(_task_key(self.task_name, self.task_options))
        return checked if checked is not None else make_task(self.task_name, **self.task_options)

    @property
    def metric_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def asked(self, when: str, at_budget: bool = False) -> list[str]:
        """The catalogue objectives this study optimises or constrains that are known
        `when` (and, for `at_budget`, only those worked out at the budget), in order."""
        from ..objectives import OBJECTIVES

        names = dict.fromkeys([o.name for o in self.objectives] + [c.objective for c in self.constraints])
        found = [OBJECTIVES.get(n) for n in names if n in OBJECTIVES]
        return [o.name for o in found if o.when == when and (o.at_budget or not at_budget)]

    def identity(self) -> dict[str, Any]:
        """What must not change when the stored study is opened again: objective names and
        directions, the task, and the space's dimensions with their kinds (a changed kind
        or choice list cannot be sampled into an existing Optuna study)."""
        return {
            "objectives": [[o.name, o.direction] for o in self.objectives],
            "task": self.task_name,
            "space": self.space.signature(),
        }


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study file; every problem is a UserError naming file, field and value."""
    path = Path(path)
    data = read_yaml(path, "study")
    if not isinstance(data, dict):
        got = "nothing" if data is None else f"a {type(data).__name__}"
        raise UserError(f"{path}: holds {got}, but a study file is a mapping of fields; allowed: {', '.join(FIELDS)}")
    for key in data:
        if key not in FIELDS:
            raise UserError(f"{path}: unknown field {key!r}{did_you_mean(key, FIELDS)}; allowed: {', '.join(FIELDS)}")
    r = StudyFileReader(path, data)
    name = r.name()
    task_name, options, task = r.task()
    space = r.space()
    cpus, gpus, packing = r.resources()
    out = r.out(name)
    budget = r.budget()
    r.check_budget_dims(budget, task)
    cfg = StudyConfig(
        name=name,
        path=path,
        task_name=task_name,
        task_options=options,
        space=space,
        objectives=r.objectives(task),
        constraints=r.constraints(),
        sampler=r.sampler(),
        n_trials=r.integer("n_trials", 12, 1, MAX_TRIALS),
        budget=budget,
        reference_input=r.reference_input(task),
        cpus=cpus,
        gpus=gpus,
        gpu_packing=packing,
        concurrency=r.integer("concurrency", 1, 1),
        seed=r.seed(),
        seed_presets=r.seed_presets(),
        storage=r.storage(out),
        out=out,
        description=r.description(),
        fidelity=r.fidelity(budget),
        repeats=r.repeats(),
        schedule=r.schedule(),
        table=r.rel("table", data["table"]) if data.get("table") is not None else None,
    )
    _check_schedule(cfg)
    _probe(cfg, task)
    _check_data(cfg, task)
    _check_gpus(cfg, task)
    return cfg


_CHECKED: dict[str, Task] = {}  # the task of the last study whose data was decoded and checked


def _check_data(cfg: StudyConfig, task: Task) -> None:
    """Refuse data that cannot be trained on before the stored study is touched: data that
    would not fit in memory at the budget's size, and (for folder datasets) files that do
    not decode or masks that break the value rule. The checked task (its decoded data) is
    kept, so the run that follows does not decode everything again."""
    from ..train import check_data_fits

    try:
        check_data_fits(task, cfg.budget)
        if hasattr(task, "check"):
            task.check(cfg.budget.size)
    except UserError as err:
        raise UserError(f"{cfg.path}: task: {err}") from None
    _CHECKED.clear()
    _CHECKED[_task_key(cfg.task_name, cfg.task_options)] = task


def _task_key(name: str, options: dict[str, Any]) -> str:
    import json

    return json.dumps([name, options], sort_keys=True, default=str)


def _probe(cfg: StudyConfig, task: Task) -> None:
    """Refuse a space none of whose points is a valid architecture (a fixed `depth: 9`, a
    fixed `block.type: bogus`, ...) before the stored study is touched."""
    from ..errors import SpecError

    try:
        cfg.space.probe(task)
    except SpecError as err:
        raise UserError(f"{cfg.path}: space: {cfg.space.source}: no point of the space is a valid architecture: {err}") from None


def _check_schedule(cfg: StudyConfig) -> None:
    """schedule: sync holds a trial at a rung until the trials beside it get there, so the
    cluster must run `concurrency` trials at once; with gpus: auto how many fit depends on
    the architectures drawn, so fidelity with that packing needs schedule: async."""
    if cfg.schedule == "sync" and cfg.fidelity is not None and cfg.gpus == "auto":
        raise UserError(
            f"{cfg.path}: schedule: sync with fidelity holds trials at rungs for the trials beside them, and with "
            "gpus: auto how many run at once depends on their memory; allowed: schedule: async, or resources.gpus: a number"
        )


def _check_gpus(cfg: StudyConfig, task: Task) -> None:
    """With gpus: auto and a stated gpu_memory, a study whose smallest architecture cannot
    train on such a GPU is refused here (with the cluster's own figure, when it is run)."""
    from .gpus import check_fits, stated

    gpus = stated(cfg)
    if gpus is not None:
        check_fits(cfg, task, gpus)
