"""Study files: what to search, on which task, for which objectives, with which budget.

    name: quickstart
    task: shapes                      # or {name: folder-seg, data: ../data/kvasir, classes: 2}
    space: ../search_spaces/tiny.yaml
    objectives: [dice, skip_memory_bytes]       # or {name: ..., direction: ...}
    constraints: [{objective: skip_memory_bytes, max: 2 MiB}]
    sampler: {type: nsga2, population: 8}       # nsga2 | tpe | gp | random
    n_trials: 12
    budget: {steps: 60, batch: 8, size: [48, 48]}
    resources: {cpus: 1, gpus: 0}
    concurrency: 2
    seed: 0
    seed_presets: [tiny-naf]

Relative paths are relative to the study file. Outputs go to `out` (default: a folder
named after the study next to the YAML), the study itself to `storage` (default: a
SQLite file there).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..tasks import Task, list_tasks, make_task
from ..train import Budget
from .space import SearchSpace, read_yaml

# figures known before training (usable in constraints) and their natural direction
COSTS = {
    "skip_memory_bytes": "minimize",
    "skip_memory_me1": "minimize",
    "params": "minimize",
    "macs": "minimize",
    "flops": "minimize",
    "peak_activation_bytes": "minimize",
}
AFTER_TRAINING = {"train_time_s": "minimize", "images_per_s": "maximize"}
SAMPLERS = ("nsga2", "tpe", "gp", "random")
FIELDS = (
    "name",
    "description",
    "task",
    "space",
    "objectives",
    "constraints",
    "sampler",
    "n_trials",
    "budget",
    "reference_input",
    "resources",
    "concurrency",
    "seed",
    "seed_presets",
    "storage",
    "out",
)
UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def _hint(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_amount(where: str, value: Any) -> float:
    """A number, or a string with a unit: '2 MiB', '1.5M', '300k'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in UNITS:
        raise UserError(f"{where}: {value!r} is not an amount; allowed: a number or one with a unit (KiB, MiB, GiB, K, M, G)")
    return float(m.group(1)) * UNITS[m.group(2).lower()]


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str


@dataclass(frozen=True)
class Constraint:
    objective: str
    low: float | None
    high: float | None

    def violation(self, value: float) -> float:
        """How far `value` is outside the bounds (0 when inside)."""
        below = self.low - value if self.low is not None and value < self.low else 0.0
        above = value - self.high if self.high is not None and value > self.high else 0.0
        return max(below, above)


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
    reference_input: tuple[int, int, int]
    cpus: float = 1
    gpus: float = 0
    concurrency: int = 1
    seed: int = 0
    seed_presets: list[str] = field(default_factory=list)
    storage: str = ""
    out: Path = Path(".")
    description: str = ""

    def make_task(self) -> Task:
        return make_task(self.task_name, **self.task_options)

    @property
    def metric_names(self) -> list[str]:
        return [o.name for o in self.objectives]


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study file; every problem is a UserError naming file, field and value."""
    path = Path(path)
    data = read_yaml(path, "study")
    if not isinstance(data, dict):
        raise UserError(f"{path}: a study file is a mapping of fields ({', '.join(FIELDS)})")
    for key in data:
        if key not in FIELDS:
            raise UserError(f"{path}: unknown field {key!r}{_hint(key, FIELDS)}; allowed: {', '.join(FIELDS)}")
    here = path.parent.resolve()  # absolute: Ray workers run in other working directories
    where = str(path)

    def rel(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else here / q

    # task
    raw_task = data.get("task", "shapes")
    options = dict(raw_task) if isinstance(raw_task, dict) else {"name": raw_task}
    task_name = options.pop("name", None)
    if task_name not in list_tasks():
        raise UserError(
            f"{where}: task: {task_name!r} is not a task{_hint(task_name, list_tasks())}; allowed: {', '.join(list_tasks())}"
        )
    for key in ("data", "split"):
        if key in options:
            options[key] = str(rel(options[key]))
    try:
        task = make_task(task_name, **options)
    except UserError as err:
        raise UserError(f"{where}: task: {err}") from None

    # space
    if "space" not in data:
        raise UserError(f"{where}: space: missing; give a search space file, e.g. ../search_spaces/tiny.yaml")
    try:
        space = SearchSpace.load(rel(data["space"]))
    except UserError as err:
        raise UserError(f"{where}: space: {err}") from None

    # objectives
    known = {**{m: "maximize" for m in task.metric_names}, **COSTS, **AFTER_TRAINING}
    objectives = []
    for raw in data.get("objectives") or [task.primary, "skip_memory_bytes"]:
        entry = {"name": raw} if isinstance(raw, str) else dict(raw)
        name = entry.get("name")
        if name not in known:
            raise UserError(
                f"{where}: objectives: {name!r} is not an objective of task {task_name}{_hint(name, known)}; "
                f"allowed: {', '.join(known)}"
            )
        direction = entry.get("direction", known[name])
        if direction not in ("maximize", "minimize"):
            raise UserError(f"{where}: objectives.{name}.direction: {direction!r}; allowed: maximize, minimize")
        objectives.append(Objective(name, direction))

    constraints = []
    for raw in data.get("constraints") or []:
        if not isinstance(raw, dict) or "objective" not in raw:
            raise UserError(f"{where}: constraints: {raw!r}; allowed: {{objective: NAME, max: VALUE}} (and/or min)")
        name = raw["objective"]
        if name not in COSTS:
            raise UserError(
                f"{where}: constraints: {name!r} is not a figure known before training{_hint(name, COSTS)}; "
                f"allowed: {', '.join(COSTS)}"
            )
        low = parse_amount(f"{where}: constraints.{name}.min", raw["min"]) if "min" in raw else None
        high = parse_amount(f"{where}: constraints.{name}.max", raw["max"]) if "max" in raw else None
        if low is None and high is None:
            raise UserError(f"{where}: constraints.{name}: give max and/or min")
        if low is not None and high is not None and low > high:
            raise UserError(f"{where}: constraints.{name}: min {low:g} > max {high:g}")
        constraints.append(Constraint(name, low, high))

    sampler = data.get("sampler") or {"type": "nsga2"}
    sampler = {"type": sampler} if isinstance(sampler, str) else dict(sampler)
    if sampler.get("type") not in SAMPLERS:
        raise UserError(
            f"{where}: sampler.type: {sampler.get('type')!r}{_hint(sampler.get('type'), SAMPLERS)}; "
            f"allowed: {', '.join(SAMPLERS)}"
        )

    def positive_int(key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{where}: {key}: {value!r}; allowed: an integer >= 1")
        return value

    raw_budget = dict(data.get("budget") or {})
    for key in raw_budget:
        if key not in Budget.__dataclass_fields__:
            allowed = list(Budget.__dataclass_fields__)
            raise UserError(f"{where}: budget.{key}: unknown field{_hint(key, allowed)}; allowed: {', '.join(allowed)}")
    try:
        budget = Budget(**raw_budget)
    except (UserError, TypeError) as err:
        raise UserError(f"{where}: {err}") from None

    resources = dict(data.get("resources") or {})
    for key in resources:
        if key not in ("cpus", "gpus"):
            raise UserError(f"{where}: resources.{key}: unknown field{_hint(key, ['cpus', 'gpus'])}; allowed: cpus, gpus")
    ref = tuple(data.get("reference_input") or (task.in_channels, 256, 256))
    if len(ref) != 3 or ref[0] != task.in_channels:
        raise UserError(f"{where}: reference_input: {list(ref)!r}; allowed: [C, H, W] with C = {task.in_channels}")

    from ..presets import list_presets

    presets = list(data.get("seed_presets") or [])
    for p in presets:
        if p not in list_presets():
            raise UserError(f"{where}: seed_presets: {p!r} is not a preset{_hint(p, list_presets())}")
    name = str(data.get("name", path.stem))
    out = rel(data["out"]) if data.get("out") else here / name
    storage = str(data.get("storage") or f"sqlite:///{(out / 'study.db').resolve()}")
    return StudyConfig(
        name=name,
        path=path,
        task_name=task_name,
        task_options=options,
        space=space,
        objectives=objectives,
        constraints=constraints,
        sampler=sampler,
        n_trials=positive_int("n_trials", 12),
        budget=budget,
        reference_input=ref,
        cpus=float(resources.get("cpus", 1)),
        gpus=float(resources.get("gpus", 0)),
        concurrency=positive_int("concurrency", 1),
        seed=int(data.get("seed", 0)),
        seed_presets=presets,
        storage=storage,
        out=out,
        description=str(data.get("description", "")),
    )
