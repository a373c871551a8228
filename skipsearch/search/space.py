"""Search spaces: YAML files of choices and ranges over ArchSpec fields.

    params:
      depth: {choice: [3, 4, 5]}
      width: {int: [8, 64], step: 8}
      block.type: {choice: [naf, cmrf]}
      block.n: {choice: [2, 4, 8, 16], when: {block.type: cmrf}}
      skip.target: {choice: [min, mid, max], when: {skip.type: msiam_iem}}
      enc_blocks: 1                      # a plain value is fixed

Names are ArchSpec fields or `block.<param>` / `skip.<param>`; a dimension is one of
`choice`, `int: [low, high]` (with `step` or `log`), `float: [low, high]` (with `log`);
`when` makes it conditional on earlier dimensions (a value or a list of values). A fixed
block or skip parameter applies only to the types that have it.
Everything is checked on load; a sampled point becomes an ArchSpec at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..blocks import BLOCKS
from ..errors import SpecError, UserError
from ..files import read_yaml
from ..skips import SKIPS
from ..spec import ArchSpec

DIM_KEYS = ("choice", "int", "float", "step", "log", "when")


def _closest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known_names() -> set[str]:
    names = {f.name for f in dataclasses.fields(ArchSpec) if f.init}
    for prefix, registry in (("block", BLOCKS), ("skip", SKIPS)):
        names.add(f"{prefix}.type")
        for entry in registry.names():
            names.update(f"{prefix}.{p}" for p in registry.get(entry).defaults)
    return names - {"block", "skip"}


@dataclass(frozen=True)
class Dim:
    name: str
    kind: str  # choice | int | float | fixed
    values: tuple = ()
    low: float = 0
    high: float = 0
    step: int | None = None
    log: bool = False
    when: tuple[tuple[str, tuple], ...] = ()

    def active(self, point: dict[str, Any]) -> bool:
        return all(point.get(name) in allowed for name, allowed in self.when)

    def suggest(self, trial) -> Any:
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


def _parse_dim(where: str, name: str, raw: Any, earlier: dict[str, Dim]) -> Dim:
    field = f"{where}: params.{name}"
    if not isinstance(raw, dict):
        _check_fixed(field, name, raw)
        return Dim(name, "fixed", (raw,))
    for key in raw:
        if key not in DIM_KEYS:
            raise UserError(f"{field}: unknown key {key!r}{_closest(str(key), DIM_KEYS)}; allowed: {', '.join(DIM_KEYS)}")
    kinds = [k for k in ("choice", "int", "float") if k in raw]
    if len(kinds) != 1:
        raise UserError(f"{field}: give exactly one of choice, int, float (got {', '.join(kinds) or 'none'})")
    when = _parse_when(field, name, raw.get("when"), earlier)
    if kinds[0] == "choice":
        return Dim(name, "choice", _parse_choices(field, name, raw), when=when)
    if kinds[0] == "float" and _integer_field(name):
        raise UserError(f"{field}.float: {name} takes integers; allowed: int or choice")
    return _parse_range(field, name, kinds[0], raw, when)


def _integer_field(name: str) -> bool:
    """Whether every value of ArchSpec field `name` (or of a block / skip parameter of that
    name, in every design that has it) is an integer: a float range can only fail there."""
    head, _, tail = name.partition(".")
    if not tail:
        default = ArchSpec.__dataclass_fields__[name].default
        return name in ("depth", "width", "in_channels", "out_channels", "mid_blocks", "enc_blocks", "dec_blocks") or (
            isinstance(default, int) and not isinstance(default, bool)
        )
    registry = BLOCKS if head == "block" else SKIPS
    defaults = [registry.get(n).defaults[tail] for n in registry.names() if tail in registry.get(n).defaults]
    return bool(defaults) and all(isinstance(d, int) and not isinstance(d, bool) for d in defaults)


def _check_fixed(field: str, name: str, value: Any) -> None:
    registry = {"block.type": BLOCKS, "skip.type": SKIPS}.get(name)
    if registry is not None and value not in registry:
        hint = _closest(str(value), registry.names())
        raise UserError(f"{field}: {value!r} is not registered{hint}; allowed: {', '.join(registry.names())}")
    if not isinstance(value, str | int | float | bool | type(None)):
        raise UserError(f"{field}: {value!r}; allowed: a single value, or one of choice, int, float")


def _parse_when(field: str, name: str, raw: Any, earlier: dict[str, Dim]) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise UserError(f"{field}.when: {raw!r}; allowed: a mapping of earlier dimensions to values")
    when = []
    for cond, allowed in raw.items():
        if cond not in earlier:
            raise UserError(f"{field}.when: {cond!r} is not a dimension defined before {name!r}{_closest(str(cond), earlier)}")
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        dim = earlier[cond]
        if dim.kind in ("choice", "fixed"):
            missing = [v for v in values if v not in dim.values]
            if missing:
                raise UserError(
                    f"{field}.when: {cond} = {missing[0]!r} never happens; allowed: {', '.join(map(str, dim.values))}"
                )
        else:  # a range: a value outside it (or not a number) never happens either
            number = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
            missing = [v for v in values if not (number(v) and dim.low <= v <= dim.high)]
            if missing:
                raise UserError(f"{field}.when: {cond} = {missing[0]!r} never happens; allowed: {dim.low}-{dim.high}")
        when.append((cond, values))
    return tuple(when)


def _parse_choices(field: str, name: str, raw: dict[str, Any]) -> tuple:
    values = raw["choice"]
    if set(raw) - {"choice", "when"}:
        extra = sorted(set(raw) - {"choice", "when"})[0]
        raise UserError(f"{field}.{extra}: not used with choice; allowed: choice, when")
    if not isinstance(values, list) or not values:
        raise UserError(f"{field}.choice: {values!r}; allowed: a non-empty list")
    for v in values:
        if not isinstance(v, str | int | float | bool | type(None)):
            raise UserError(f"{field}.choice: {v!r}; allowed: plain values (text, numbers, true/false)")
        _check_fixed(f"{field}.choice", name, v)
    if len(set(map(repr, values))) != len(values):
        raise UserError(f"{field}.choice: {values!r} lists a value twice; allowed: distinct values")
    return tuple(values)


def _parse_range(field: str, name: str, kind: str, raw: dict[str, Any], when: tuple) -> Dim:
    bounds = raw[kind]
    number = int if kind == "int" else (int, float)
    ok = isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
    if not ok or not all(math.isfinite(b) for b in bounds):
        allowed = "two integers [low, high]" if kind == "int" else "two numbers [low, high]"
        raise UserError(f"{field}.{kind}: {bounds!r}; allowed: {allowed}")
    low, high = bounds
    if low > high:
        raise UserError(f"{field}.{kind}: low {low} > high {high}; allowed: low <= high")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{field}.log: {log!r}; allowed: true, false")
    step = raw.get("step")
    if step is not None:
        if log:
            raise UserError(f"{field}: step {step!r} with log: true; allowed: one of step, log")
        good = isinstance(step, number) and not isinstance(step, bool) and step > 0
        if not good:
            allowed = "a positive integer" if kind == "int" else "a positive number"
            raise UserError(f"{field}.step: {step!r}; allowed: {allowed}")
    if log and low <= 0:
        raise UserError(f"{field}.{kind}: low {low} with log: true; allowed: low > 0 on a log scale")
    return Dim(name, kind, (), low, high, step, log, when)


@dataclass(frozen=True)
class SearchSpace:
    name: str
    dims: tuple[Dim, ...]
    source: str = "<space>"

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        return cls.from_dict(read_yaml(path, "search space"), str(path), default_name=path.stem)

    @classmethod
    def from_dict(cls, data: Any, where: str = "<space>", default_name: str = "space") -> SearchSpace:
        if not isinstance(data, dict) or not isinstance(data.get("params"), dict) or not data["params"]:
            raise UserError(f"{where}: params: a search space needs a non-empty 'params' mapping of ArchSpec fields")
        for key in data:
            if key not in ("name", "params", "description"):
                raise UserError(f"{where}: unknown field {key!r}{_closest(str(key), ['name', 'params', 'description'])}")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name:
            raise UserError(f"{where}: name: {name!r}; allowed: text")
        if not isinstance(data.get("description", ""), str):
            raise UserError(f"{where}: description: {data['description']!r}; allowed: text")
        known = _known_names()
        dims: dict[str, Dim] = {}
        for dim_name, raw in data["params"].items():
            if dim_name not in known:
                raise UserError(f"{where}: params.{dim_name}: unknown ArchSpec field{_closest(str(dim_name), known)}")
            dims[dim_name] = _parse_dim(where, dim_name, raw, dims)
        return cls(name, tuple(dims.values()), where)

    def signature(self) -> dict[str, Any]:
        """Each dimension's kind (and choices): what an existing study cannot change."""
        return {d.name: [d.kind, [repr(v) for v in d.values]] if d.kind == "choice" else [d.kind] for d in self.dims}

    def probe(self, task=None, tries: int = 64) -> ArchSpec:
        """A valid ArchSpec of the space: its defaults (first choice, low end) first, then
        seeded random points. SpecError (the first point's) when none is valid, e.g. a
        fixed `depth: 9` or a block parameter no block of the space can take."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        first: SpecError | None = None
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        points = [self._defaults()] + [self.suggest(study.ask()) for _ in range(tries)]
        for point in points:
            try:
                return self.to_spec(point, task)
            except SpecError as err:
                first = first or err
        raise first

    def _defaults(self) -> dict[str, Any]:
        point: dict[str, Any] = {}
        for d in self.dims:
            if d.active(point):
                point[d.name] = d.values[0] if d.kind in ("choice", "fixed") else (int(d.low) if d.kind == "int" else d.low)
        return point

    def suggest(self, trial) -> dict[str, Any]:
        """Sample a point with an Optuna trial (define-by-run: inactive dims are skipped)."""
        point: dict[str, Any] = {}
        for dim in self.dims:
            if dim.active(point):
                point[dim.name] = dim.suggest(trial)
        return point

    def to_spec(self, point: dict[str, Any], task=None) -> ArchSpec:
        """The ArchSpec of a sampled point (adapted to the task); SpecError when invalid."""
        data: dict[str, Any] = {}
        for name, value in point.items():
            head, _, tail = name.partition(".")
            if tail:
                data.setdefault(head, {})[tail] = value
            else:
                data[name] = value
        fixed = {d.name for d in self.dims if d.kind == "fixed"}
        for part, registry in (("block", BLOCKS), ("skip", SKIPS)):
            if isinstance(data.get(part), dict):
                params = data[part]
                params.setdefault("type", ArchSpec.__dataclass_fields__[part].default)
                if params["type"] in registry:  # a fixed parameter applies to the types that have it
                    own = registry.get(params["type"]).defaults
                    data[part] = {k: v for k, v in params.items() if k == "type" or k in own or f"{part}.{k}" not in fixed}
        spec = ArchSpec.from_dict(data)
        return task.adapt(spec) if task is not None else spec


__all__ = ["Dim", "SearchSpace", "SpecError"]
