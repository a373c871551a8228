"""How each field of a study file is read and checked: types, ranges, units, names.

`StudyFileReader` reads one parsed YAML mapping field by field; every problem is a
UserError naming the file, the field, the value and what is allowed. search/config.py
puts the fields together into a StudyConfig.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..objectives import OBJECTIVES, known_before_training
from ..tasks import Task, list_tasks, make_task
from ..train import Budget
from .fidelity import Fidelity
from .repeats import Repeats
from .space import SearchSpace
from .storage import sqlite_path

# the default is the sampler that did best on the tabular benchmark (BENCHMARKS.md, Search quality)
DEFAULT_SAMPLER = "tpe"
SAMPLER_OPTIONS = {"nsga2": ("population",), "tpe": ("n_startup_trials",), "gp": ("n_startup_trials",), "random": ()}
SAMPLERS = tuple(SAMPLER_OPTIONS)
# sync: asks, rung decisions and seed racing follow trial order (schedule.py); async: each
# rung decides as trials arrive (more throughput on a large cluster, not repeatable)
SCHEDULES = ("sync", "async")
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
    "fidelity",
    "repeats",
    "schedule",
    "table",
)
# unit suffixes, case exact: bytes decimal and binary; counts K/M/G (thousand, million, billion)
SUFFIXES = {
    "bytes": {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30},
    "count": {"": 1, "K": 1e3, "M": 1e6, "G": 1e9},
    "ms": {"": 1, "ms": 1, "s": 1e3},
}
AMOUNT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_REFERENCE_SIDE = 16384
REFERENCE_SIDE = {2: 256, 3: 128}  # the default reference input: 256^2 images, 128^3 volumes
MAX_TRIALS = 1_000_000  # far beyond any study; a larger number is a typo
PACKING_FIELDS = ("gpu_memory", "gpu_margin", "gpu_context")  # gpus: auto only (gpus.py)
MAX_SEED = 2**32 - 1  # Optuna's samplers seed NumPy's RandomState


def did_you_mean(word: Any, options) -> str:
    options = [str(o) for o in options]
    same_case = [o for o in options if o.lower() == str(word).lower()]
    close = same_case or difflib.get_close_matches(str(word), options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_amount(where: str, value: Any, unit: str) -> float:
    """A finite number >= 0, or a string with a unit of `unit`'s kind: '2 MiB', '1.5M', '300K'
    (every figure a bound applies to is a size, a count or a time)."""
    suffixes = SUFFIXES.get(unit, {"": 1})
    allowed = ", ".join(u for u in suffixes if u)
    what = f"a number or one with a unit ({allowed}; case exact)" if allowed else "a number"
    if is_number(value):
        if value < 0:
            raise UserError(f"{where}: {value!r}; allowed: a number >= 0 (a size, a count or a time)")
        return float(value)
    m = re.fullmatch(AMOUNT, value) if isinstance(value, str) else None
    amount = float(m.group(1)) * suffixes[m.group(2)] if m and m.group(2) in suffixes else math.nan
    if not math.isfinite(amount):  # 1e400 or 1e308 GiB is not a bound either
        raise UserError(f"{where}: {value!r} is not an amount; allowed: {what}, finite")
    return amount


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


class StudyFileReader:
    """Reads one study file's fields in order; `fail` prefixes every message with the file."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data
        self.here = path.parent.resolve()  # absolute: Ray workers run in other working directories

    def fail(self, field: str, message: str) -> UserError:
        return UserError(f"{self.path}: {field}: {message}")

    def rel(self, field: str, value: Any) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"{value!r}; allowed: a path (relative to the study file)")
        if "\0" in value:
            raise self.fail(field, f"{value!r}; allowed: a path without NUL characters")
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.here / p

    def mapping(self, field: str, default: Any = None) -> dict[str, Any]:
        value = self.data.get(field, default)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(field, f"{value!r}; allowed: a mapping of fields")
        return value

    def integer(self, field: str, default: int, low: int, high: int | None = None) -> int:
        value = self.data.get(field, default)
        if not is_int(value) or value < low or (high is not None and value > high):
            allowed = f"an integer >= {low} and <= {high:,}" if high is not None else f"an integer >= {low}"
            raise self.fail(field, f"{value!r}; allowed: {allowed}")
        return value

    # -- the fields -----------------------------------------------------------------
    def name(self) -> str:
        value = self.data.get("name", self.path.stem)
        if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
            raise self.fail(
                "name", f"{value!r}; allowed: a file name of letters, digits, '.', '_' and '-' (it names the output folder)"
            )
        return value

    def task(self) -> tuple[str, dict[str, Any], Task]:
        raw = self.data.get("task", "shapes")
        if isinstance(raw, dict):
            options = dict(raw)
            name = options.pop("name", None)
        else:
            name, options = raw, {}
        if name not in list_tasks():
            tasks = list_tasks()
            raise self.fail("task", f"{name!r} is not a task{did_you_mean(name, tasks)}; allowed: {', '.join(tasks)}")
        for key in ("data", "split", "cache"):
            if key in options:
                options[key] = str(self.rel(f"task.{key}", options[key]))
        try:
            return name, options, make_task(name, **options)
        except UserError as err:
            raise self.fail("task", str(err)) from None

    def space(self) -> SearchSpace:
        if "space" not in self.data:
            raise self.fail("space", "missing; give a search space file, e.g. ../search_spaces/tiny.yaml")
        path = self.rel("space", self.data["space"])
        try:
            return SearchSpace.load(path)
        except UserError as err:
            raise self.fail("space", str(err)) from None

    def objectives(self, task: Task) -> list[Objective]:
        known = {n: o.direction for n, o in OBJECTIVES.items() if not o.metric or n in task.metric_names}
        raw = self.data.get("objectives", [task.primary, "skip_memory_bytes"])
        if not isinstance(raw, list) or not raw:
            example = f"[{task.primary}, skip_memory_bytes]"
            raise self.fail("objectives", f"{raw!r}; allowed: a non-empty list of objectives, e.g. {example}")
        out: list[Objective] = []
        for entry in raw:
            entry = {"name": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict) or set(entry) - {"name", "direction"}:
                raise self.fail("objectives", f"{entry!r}; allowed: a name or {{name: NAME, direction: maximize|minimize}}")
            name = entry.get("name")
            if name not in known:
                raise self.fail(
                    "objectives",
                    f"{name!r} is not an objective of task {task.name}{did_you_mean(name, known)}; allowed: {', '.join(known)}",
                )
            if name in (o.name for o in out):
                raise self.fail("objectives", f"{name!r} is listed twice; allowed: each objective once")
            direction = entry.get("direction", known[name])
            if direction not in ("maximize", "minimize"):
                raise self.fail(f"objectives.{name}.direction", f"{direction!r}; allowed: maximize, minimize")
            out.append(Objective(name, direction))
        return out

    def constraints(self) -> list[Constraint]:
        raw = self.data.get("constraints") or []
        if not isinstance(raw, list):
            raise self.fail("constraints", f"{raw!r}; allowed: a list of {{objective: NAME, max: VALUE}} (and/or min)")
        return [self._constraint(entry) for entry in raw]

    def _constraint(self, raw: Any) -> Constraint:
        if not isinstance(raw, dict) or "objective" not in raw or set(raw) - {"objective", "min", "max"}:
            raise self.fail("constraints", f"{raw!r}; allowed: {{objective: NAME, max: VALUE}} (and/or min)")
        name, before = raw["objective"], known_before_training()
        if name not in before:
            hint = did_you_mean(name, before)
            raise self.fail("constraints", f"{name!r} is not a figure known before training{hint}; allowed: {', '.join(before)}")
        unit = OBJECTIVES.get(name).unit
        bound = lambda key: parse_amount(f"{self.path}: constraints.{name}.{key}", raw[key], unit) if key in raw else None  # noqa: E731
        low, high = bound("min"), bound("max")
        if low is None and high is None:
            raise self.fail(f"constraints.{name}", "no bound; allowed: max and/or min")
        if low is not None and high is not None and low > high:
            raise self.fail(f"constraints.{name}", f"min {low:g} > max {high:g}; allowed: min <= max")
        if high is not None and high <= 0 and OBJECTIVES.get(name).positive:
            raise self.fail(f"constraints.{name}.max", f"{high:g}: {name} is always above 0; allowed: a bound > 0")
        return Constraint(name, low, high)

    def sampler(self) -> dict[str, Any]:
        raw = self.data.get("sampler", DEFAULT_SAMPLER)
        sampler = {"type": raw} if isinstance(raw, str) else raw
        if not isinstance(sampler, dict):
            raise self.fail("sampler", f"{raw!r}; allowed: a sampler name or {{type: NAME, ...options}}")
        kind = sampler.get("type", DEFAULT_SAMPLER)
        if kind not in SAMPLERS:
            raise self.fail("sampler.type", f"{kind!r}{did_you_mean(kind, SAMPLERS)}; allowed: {', '.join(SAMPLERS)}")
        for key, value in sampler.items():
            if key == "type":
                continue
            if key not in SAMPLER_OPTIONS[kind]:
                allowed = ", ".join(SAMPLER_OPTIONS[kind]) or "no options"
                hint = did_you_mean(key, SAMPLER_OPTIONS[kind])
                raise self.fail(f"sampler.{key}", f"not an option of the {kind} sampler{hint}; allowed: {allowed}")
            low = 2 if key == "population" else 0
            if not is_int(value) or value < low:
                raise self.fail(f"sampler.{key}", f"{value!r}; allowed: an integer >= {low}")
        return {**sampler, "type": kind}

    def budget(self) -> Budget:
        raw = self.mapping("budget")
        allowed = list(Budget.__dataclass_fields__)
        for key in raw:
            if key not in allowed:
                raise self.fail(f"budget.{key}", f"unknown field{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")
        try:
            budget = Budget(**raw)
        except UserError as err:
            raise UserError(f"{self.path}: {err}") from None
        if "min_lr" in raw and budget.min_lr > budget.lr:  # the schedule would rise to min_lr
            raise self.fail("budget min_lr", f"{budget.min_lr!r} is invalid; allowed: a number >= 0 and <= lr ({budget.lr:g})")
        return budget

    def resources(self) -> tuple[float, float | str, Any]:
        """(cpus, gpus, packing): gpus is a number, or "auto" with its Packing (gpus.py)."""
        from .gpus import Packing

        raw = self.mapping("resources")
        allowed = ["cpus", "gpus", *PACKING_FIELDS]
        for key in raw:
            if key not in allowed:
                raise self.fail(f"resources.{key}", f"unknown field{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")
        cpus, gpus = raw.get("cpus", 1), raw.get("gpus", 0)
        if not is_number(cpus) or cpus <= 0:
            raise self.fail("resources.cpus", f"{cpus!r}; allowed: a number > 0 (CPUs per trial)")
        if gpus != "auto" and (not is_number(gpus) or gpus < 0):
            raise self.fail(
                "resources.gpus", f"{gpus!r}; allowed: a number >= 0 (a fraction of a GPU packs trials), or auto (by memory)"
            )
        if gpus != "auto":
            for key in PACKING_FIELDS:
                if key in raw:
                    raise self.fail(f"resources.{key}", f"given with gpus: {gpus!r}; allowed: only with gpus: auto")
            return float(cpus), float(gpus), None
        memory = raw.get("gpu_memory")
        if memory is not None:
            memory = parse_amount(f"{self.path}: resources.gpu_memory", memory, "bytes")
            if memory < 2**30:
                raise self.fail("resources.gpu_memory", f"{raw['gpu_memory']!r}; allowed: the memory of each GPU, >= 1 GiB")
        margin = raw.get("gpu_margin", Packing.margin)
        if not is_number(margin) or not 0 <= margin <= 4:
            raise self.fail("resources.gpu_margin", f"{margin!r}; allowed: a fraction of the peak, 0-4 (0.25 adds 25 %)")
        context = parse_amount(f"{self.path}: resources.gpu_context", raw.get("gpu_context", Packing.context), "bytes")
        if context > 64 * 2**30:
            raise self.fail("resources.gpu_context", f"{raw['gpu_context']!r}; allowed: 0-64 GiB (the CUDA context per process)")
        return float(cpus), "auto", Packing(None if memory is None else int(memory), float(margin), int(context))

    def reference_input(self, task: Task) -> tuple[int, ...]:
        dims = task.spatial_dims
        ref = self.data.get("reference_input", [task.in_channels, *[REFERENCE_SIDE[dims]] * dims])
        ok = (
            isinstance(ref, list)
            and len(ref) == 1 + dims
            and all(is_int(v) for v in ref)
            and ref[0] == task.in_channels
            and all(8 <= v <= MAX_REFERENCE_SIDE for v in ref[1:])
        )
        if not ok:
            form, sides = ("[C, H, W]", "H, W") if dims == 2 else ("[C, D, H, W] (a volume task)", "D, H, W")
            raise self.fail(
                "reference_input",
                f"{ref!r}; allowed: {form} with C = {task.in_channels} (the task's channels)"
                f" and 8 <= {sides} <= {MAX_REFERENCE_SIDE}",
            )
        return tuple(ref)

    def check_budget_dims(self, budget: Budget, task: Task) -> None:
        """The budget's training size has the task's number of spatial sides."""
        if len(budget.size) != task.spatial_dims:
            form = "[H, W]" if task.spatial_dims == 2 else "[D, H, W]"
            kind = "images" if task.spatial_dims == 2 else "volumes"
            raise self.fail("budget.size", f"{list(budget.size)!r}: task {task.name!r} has {kind}; allowed: {form}")

    def seed(self) -> int:
        value = self.data.get("seed", 0)
        if not is_int(value) or not 0 <= value <= MAX_SEED:
            raise self.fail("seed", f"{value!r}; allowed: an integer 0-{MAX_SEED}")
        return value

    def seed_presets(self) -> list[str]:
        from ..presets import list_presets

        raw = self.data.get("seed_presets") or []
        if not isinstance(raw, list):
            raise self.fail("seed_presets", f"{raw!r}; allowed: a list of preset names ({', '.join(list_presets())})")
        for p in raw:
            if p not in list_presets():
                allowed = ", ".join(list_presets())
                raise self.fail("seed_presets", f"{p!r} is not a preset{did_you_mean(p, list_presets())}; allowed: {allowed}")
        return list(raw)

    def out(self, name: str) -> Path:
        out = self.rel("out", self.data["out"]) if self.data.get("out") is not None else self.here / name
        if out.exists() and not out.is_dir():
            raise self.fail("out", f"{str(out)!r} is a file; allowed: a folder (created if missing)")
        parent = out
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise self.fail("out", f"{str(out)!r}: {parent} is a file; allowed: a folder (created if missing)")
        return out

    def storage(self, out: Path) -> str:
        raw = self.data.get("storage")
        if raw is None:
            return f"sqlite:///{(out / 'study.db').resolve()}"
        if raw == "memory://":
            return raw  # in-memory: nothing kept (benchmarks)
        example = "a database URL, e.g. sqlite:///path/study.db or postgresql://host/db"
        if not isinstance(raw, str) or "\0" in raw or not re.fullmatch(r"[a-z][a-z0-9+]*://.+", raw):
            raise self.fail("storage", f"{raw!r}; allowed: {example}")
        db = sqlite_path(raw)
        if raw.startswith("sqlite:") and db is not None:
            if db.is_dir():
                raise self.fail("storage", f"{raw!r}: {db} is a folder; allowed: a database file (new or an Optuna study)")
            folder = db.parent.resolve()
            if not folder.is_dir() and folder != out.resolve():
                raise self.fail("storage", f"{raw!r}: folder {db.parent} does not exist; allowed: a file in an existing folder")
            return raw
        try:  # the database's driver, before anything is created (sqlalchemy ships with Optuna)
            from sqlalchemy.engine import make_url

            url = make_url(raw)
        except Exception as err:  # noqa: BLE001 - ArgumentError, ...
            raise self.fail("storage", f"{raw!r}: cannot use this database ({_first_line(err)}); allowed: {example}") from None
        shown = url.render_as_string(hide_password=True)  # a password never goes into a message
        try:
            dialect = url.get_dialect()
        except Exception as err:  # noqa: BLE001 - NoSuchModuleError, ...
            raise self.fail("storage", f"{shown!r}: cannot use this database ({_first_line(err)}); allowed: {example}") from None
        try:
            dialect.import_dbapi()
        except Exception as err:  # noqa: BLE001 - ImportError, ...
            hint = ""
            if url.drivername == "postgresql":  # SQLAlchemy 2.1 reads it as postgresql+psycopg, 2.0 as +psycopg2
                hint = f" (postgresql:// means postgresql+{dialect.driver}:// here; with psycopg2-binary installed: postgresql+psycopg2://)"
            why = f"cannot use this database ({_first_line(err)}){hint}"
            raise self.fail("storage", f"{shown!r}: {why}; allowed: {example}, with its driver installed") from None
        return raw

    def fidelity(self, budget: Budget) -> Fidelity | None:
        raw = self.data.get("fidelity")
        if raw is None:
            return None
        allowed = "{type: asha, min_steps: M, eta: E}"
        if not isinstance(raw, dict):
            raise self.fail("fidelity", f"{raw!r}; allowed: {allowed}")
        self._known_keys("fidelity", raw, ("type", "min_steps", "eta"))
        if raw.get("type", "asha") != "asha":
            raise self.fail("fidelity.type", f"{raw.get('type')!r}; allowed: asha")
        m, eta = raw.get("min_steps"), raw.get("eta", 3)
        if not is_int(m) or not 1 <= m < budget.steps:
            raise self.fail("fidelity.min_steps", f"{m!r}; allowed: an integer 1 <= min_steps < budget.steps ({budget.steps})")
        if not is_int(eta) or eta < 2:
            raise self.fail("fidelity.eta", f"{eta!r}; allowed: an integer >= 2 (1 in eta trials goes on at each rung)")
        return Fidelity(m, eta)

    def repeats(self) -> Repeats | None:
        raw = self.data.get("repeats")
        if raw is None:
            return None
        allowed = "{max_seeds: S, confidence: C, runs: N} (or {seeds: S, top: K})"
        if not isinstance(raw, dict):
            raise self.fail("repeats", f"{raw!r}; allowed: {allowed}")
        self._known_keys("repeats", raw, ("max_seeds", "confidence", "runs", "seeds", "top"))
        if "seeds" in raw and "max_seeds" in raw:
            raise self.fail("repeats.seeds", "given with max_seeds, which it is another name for; allowed: one of them")
        key = "max_seeds" if "max_seeds" in raw else "seeds"
        seeds, top, runs = raw.get(key, 3), raw.get("top"), raw.get("runs")
        level = raw.get("confidence", 0.9)
        if not is_int(seeds) or seeds < 1:
            raise self.fail(f"repeats.{key}", f"{seeds!r}; allowed: an integer >= 1 (evaluations per architecture)")
        if top is not None and (not is_int(top) or top < 1):
            raise self.fail("repeats.top", f"{top!r}; allowed: an integer >= 1 (front members repeated)")
        if runs is not None and (not is_int(runs) or runs < 0):
            raise self.fail("repeats.runs", f"{runs!r}; allowed: an integer >= 0 (extra training runs in all)")
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0.5 < level < 1:
            raise self.fail("repeats.confidence", f"{level!r}; allowed: a number between 0.5 and 1 (e.g. 0.9)")
        if "seeds" in raw and top is None and ("confidence" not in raw and runs is None):
            top = 8  # {seeds: S} alone kept its meaning: the front's 8 most accurate members
        return Repeats(seeds, top, float(level), runs)

    def schedule(self) -> str:
        value = self.data.get("schedule", "sync")
        if value not in SCHEDULES:
            hint = did_you_mean(str(value), SCHEDULES)
            raise self.fail("schedule", f"{value!r}{hint}; allowed: {', '.join(SCHEDULES)}")
        return value

    def _known_keys(self, field: str, raw: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in raw:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                raise self.fail(f"{field}.{key}", f"unknown field{hint}; allowed: {', '.join(allowed)}")

    def description(self) -> str:
        value = self.data.get("description", "")
        if not isinstance(value, str):
            raise self.fail("description", f"{value!r}; allowed: text")
        return value


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
