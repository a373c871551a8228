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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..blocks import BLOCKS
from ..errors import SpecError, UserError
from ..skips import SKIPS
from ..spec import ArchSpec

DIM_KEYS = ("choice", "int", "float", "step", "log", "when")


def read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file; a missing or malformed one is a UserError naming it."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: malformed YAML ({str(err).splitlines()[0]})") from None


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
        return Dim(name, "fixed", (raw,))
    for key in raw:
        if key not in DIM_KEYS:
            raise UserError(f"{field}: unknown key {key!r}{_closest(key, DIM_KEYS)}; allowed: {', '.join(DIM_KEYS)}")
    kinds = [k for k in ("choice", "int", "float") if k in raw]
    if len(kinds) != 1:
        raise UserError(f"{field}: give exactly one of choice, int, float (got {', '.join(kinds) or 'none'})")
    kind = kinds[0]
    when = []
    for cond, allowed in (raw.get("when") or {}).items():
        if cond not in earlier:
            raise UserError(f"{field}.when: {cond!r} is not a dimension defined before {name!r}{_closest(cond, earlier)}")
        when.append((cond, tuple(allowed) if isinstance(allowed, list) else (allowed,)))
    if kind == "choice":
        values = raw["choice"]
        if not isinstance(values, list) or not values:
            raise UserError(f"{field}.choice: {values!r}; allowed: a non-empty list")
        registry = {"block.type": BLOCKS, "skip.type": SKIPS}.get(name)
        for v in values if registry else ():
            if v not in registry:
                raise UserError(
                    f"{field}.choice: {v!r} is not registered{_closest(str(v), registry.names())}; "
                    f"allowed: {', '.join(registry.names())}"
                )
        return Dim(name, "choice", tuple(values), when=tuple(when))
    bounds = raw[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds)):
        raise UserError(f"{field}.{kind}: {bounds!r}; allowed: [low, high]")
    low, high = bounds
    if low > high:
        raise UserError(f"{field}.{kind}: low {low} > high {high}; allowed: low <= high")
    if kind == "int" and not all(isinstance(b, int) for b in bounds):
        raise UserError(f"{field}.int: {bounds!r}; allowed: two integers")
    return Dim(name, kind, (), low, high, raw.get("step"), bool(raw.get("log", False)), tuple(when))


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
        if not isinstance(data, dict) or "params" not in data:
            raise UserError(f"{where}: a search space needs a 'params' mapping")
        for key in data:
            if key not in ("name", "params", "description"):
                raise UserError(f"{where}: unknown field {key!r}{_closest(key, ['name', 'params', 'description'])}")
        known = _known_names()
        dims: dict[str, Dim] = {}
        for name, raw in (data["params"] or {}).items():
            if name not in known:
                raise UserError(f"{where}: params.{name}: unknown ArchSpec field{_closest(name, known)}")
            dims[name] = _parse_dim(where, name, raw, dims)
        return cls(str(data.get("name", default_name)), tuple(dims.values()), where)

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
