"""ArchSpec: the one frozen, validated description of a network.

Everything that crosses between parts of skipsearch (search, builder, costs, export,
dashboard) is an ArchSpec or its JSON form. Saved files hold registry names only.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .blocks import BLOCKS
from .errors import SpecError
from .operators import DOWN, STEM, UP
from .skips import SKIPS

SCHEMA_VERSION = 1
DEPTH_RANGE = (2, 5)
HEADS = ("seg", "restore")
_ABSENT = object()
# Sanity bounds: far above any published U-Net (NAFNet stacks 28 blocks at one level),
# low enough that building a network on the meta device stays quick.
MAX_BLOCKS = 64
MAX_CHANNELS = 4096
# Widths of the levels (the bottleneck included): far above any real network, low enough
# that no weight of a level can overflow torch's 64-bit element counts.
MAX_WIDTH = 2**21


@dataclass(frozen=True)
class Component:
    """A registered block family or skip design with its (complete) parameters."""

    type: str
    params: tuple[tuple[str, Any], ...] = ()

    def __getitem__(self, name: str) -> Any:
        return dict(self.params)[name]

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **dict(self.params)}


SPATIAL_DIMS = (2, 3)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        allowed = f"an integer {low}-{high}" if high is not None else f"an integer >= {low}"
        raise SpecError(name, value, allowed)
    return value


def _check_width(name: str, value: Any) -> int:
    _check_int(name, value, 1)
    if value > MAX_WIDTH:
        raise SpecError(name, value, f"an integer >= 1 and <= {MAX_WIDTH}")
    return value


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        raise SpecError(name, value, ", ".join(choices), f"did you mean {close[0]!r}?" if close else "")
    return value


def _check_type(name: str, value: Any, default: Any) -> Any:
    """Coerce a parameter to the type of its default (ints accepted for floats)."""
    kind = type(default)
    if default is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise SpecError(name, value, f"a {kind.__name__}")


def fill_params(prefix: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Complete `given` with `defaults`, rejecting unknown names and wrong types."""
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            allowed = ", ".join(sorted(defaults)) or "no parameters"
            raise SpecError(
                f"{prefix}.{key}", value, allowed, f"unknown parameter{'; did you mean ' + repr(close[0]) + '?' if close else ''}"
            )
        out[key] = _check_type(f"{prefix}.{key}", value, defaults[key])
    return out


def _per_level(name: str, value: Any, depth: int) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * depth
    if not isinstance(value, list | tuple) or len(value) != depth:
        raise SpecError(name, value, f"an integer or a list of {depth} integers (one per encoder level, finest first)")
    return tuple(_check_int(f"{name}[{i}]", v, 0, MAX_BLOCKS) for i, v in enumerate(value))


def _component(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Component):
        return value.type, dict(value.params)
    if isinstance(value, Mapping) and "type" in value:
        rest = {k: v for k, v in value.items() if k != "type"}
        return value["type"], rest
    raise SpecError(name, value, 'an object with a "type" key, e.g. {"type": "...", ...}')


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json.loads would keep the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(key, value, "each key once", f"duplicate key {key!r}")
        out[key] = value
    return out


@dataclass(frozen=True)
class ArchSpec:
    """A U-Net: encoder levels, bottleneck, decoder, skip design and head.

    Level l (1..depth) runs at 1/2^(l-1) of the (padded) input resolution with width
    ``level_widths[l-1]``; the bottleneck runs at 1/2^depth with ``level_widths[depth]``.
    Per-level block counts are listed finest level first.
    """

    in_channels: int = 3
    out_channels: int = 1
    depth: int = 4
    width: int = 32
    widths: tuple[int, ...] | None = None
    block: Component | Mapping[str, Any] | str = "conv"
    skip: Component | Mapping[str, Any] | str = "plain"
    enc_blocks: tuple[int, ...] | int = 1
    mid_blocks: int = 1
    dec_blocks: tuple[int, ...] | int = 1
    down: str | None = None
    up: str | None = None
    stem: str | None = None
    head: str = "seg"
    spatial_dims: int = 2  # 2: images (N, C, H, W); 3: volumes (N, C, D, H, W)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- validation ---------------------------------------------------------------
    def __post_init__(self) -> None:
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        _check_int("in_channels", self.in_channels, 1, MAX_CHANNELS)
        _check_int("out_channels", self.out_channels, 1, MAX_CHANNELS)
        _check_int("depth", self.depth, *DEPTH_RANGE)
        _check_width("width", self.width)
        put("widths", self._resolve_widths())
        if self.widths is None and self.width << self.depth > MAX_WIDTH:
            raise SpecError(
                "width",
                self.width,
                f"an integer >= 1 and <= {MAX_WIDTH >> self.depth} at depth {self.depth}",
                f"the bottleneck has width x 2**depth channels, at most {MAX_WIDTH}",
            )
        put("enc_blocks", _per_level("enc_blocks", self.enc_blocks, self.depth))
        put("dec_blocks", _per_level("dec_blocks", self.dec_blocks, self.depth))
        _check_int("mid_blocks", self.mid_blocks, 0, MAX_BLOCKS)
        _check_choice("head", self.head, HEADS)
        if self.head == "restore" and self.in_channels != self.out_channels:
            raise SpecError(
                "out_channels", self.out_channels, f"{self.in_channels} (= in_channels)", "the restore head adds the input back"
            )

        d = self.spatial_dims
        if not isinstance(d, int) or isinstance(d, bool) or d not in SPATIAL_DIMS:
            raise SpecError("spatial_dims", self.spatial_dims, "2 (images), 3 (volumes)")
        btype, bparams = _component("block", self.block)
        family = BLOCKS.get(btype)
        put("block", Component(btype, tuple(sorted(fill_params("block", bparams, family.defaults).items()))))
        for name in ("down", "up", "stem"):  # None: the block family's own
            put(name, self._operator(name, getattr(self, name), getattr(family, name)))
        family.validate(self)

        stype, sparams = _component("skip", self.skip)
        design = SKIPS.get(stype)
        params = design.resolve(fill_params("skip", sparams, design.defaults), self)
        put("skip", Component(stype, tuple(sorted(params.items()))))

    def _operator(self, name: str, given: str | None, default: str) -> str:
        """The operator `name` (down, up, stem): the given one or the family's, in a form
        that exists for the spec's dimensions (bicubic, the family default of CMRF, turns
        trilinear for volumes; one named explicitly must exist there)."""
        registry = {"down": DOWN, "up": UP, "stem": STEM}[name]
        d = self.spatial_dims
        if given is None and not registry.get(default).has(d):
            given = registry.get(default).in_3d
        chosen = _check_choice(name, default if given is None else given, tuple(registry.names()))
        if not registry.get(chosen).has(d):
            fit = [n for n in registry.names() if registry.get(n).has(d)]
            raise SpecError(name, chosen, ", ".join(fit), f"'{chosen}' has no {d}-D form (spatial_dims {d})")
        return chosen

    def _resolve_widths(self) -> tuple[int, ...] | None:
        if self.widths is None:
            return None
        ws = self.widths
        if not isinstance(ws, list | tuple) or len(ws) != self.depth + 1:
            raise SpecError("widths", ws, f"a list of {self.depth + 1} integers (depth {self.depth} levels + bottleneck)")
        ws = tuple(_check_width(f"widths[{i}]", w) for i, w in enumerate(ws))
        if ws[0] != self.width:
            raise SpecError("width", self.width, f"{ws[0]} (= widths[0])", "width and widths disagree")
        return None if ws == self._doubling() else ws  # canonical: None means doubling

    def _doubling(self) -> tuple[int, ...]:
        return tuple(self.width * 2**i for i in range(self.depth + 1))

    # -- geometry -----------------------------------------------------------------
    @property
    def level_widths(self) -> tuple[int, ...]:
        """Widths of levels 1..depth followed by the bottleneck width."""
        return self.widths or self._doubling()

    def down_channels(self, level: int) -> int:
        """Channels leaving the down operator below level `level` (1-based)."""
        ws = self.level_widths
        return DOWN.get(self.down).channels(ws[level - 1], ws[level])

    def up_channels(self, level: int) -> int:
        """Channels of the upsampled decoder tensor arriving at level `level`."""
        ws = self.level_widths
        return UP.get(self.up).channels(ws[level], ws[level - 1])

    @property
    def stem_channels(self) -> int:
        """Channels the first encoder level receives."""
        return STEM.get(self.stem).channels(self.in_channels, self.level_widths[0])

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this on each spatial side."""
        return 2**self.depth

    # -- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "depth": self.depth,
            "width": self.width,
            "widths": list(self.level_widths),
            "block": self._canonical_block(),
            "skip": self.skip.to_dict(),
            "enc_blocks": list(self.enc_blocks),
            "mid_blocks": self.mid_blocks,
            "dec_blocks": list(self.dec_blocks),
            "down": self.down,
            "up": self.up,
            "stem": self.stem,
            "head": self.head,
            **({"spatial_dims": self.spatial_dims} if self.spatial_dims != 2 else {}),  # 2-D ids stay as they were
        }

    def _canonical_block(self) -> dict[str, Any]:
        """Block parameters, less the optional ones at their defaults (they were added after
        arch ids existed, and leaving them out keeps those ids)."""
        optional = BLOCKS.get(self.block.type).optional
        return {k: v for k, v in self.block.to_dict().items() if optional.get(k, _ABSENT) != v}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchSpec:
        if not isinstance(data, Mapping):
            raise SpecError("<spec>", type(data).__name__, "a JSON object")
        data = dict(data)
        schema = data.pop("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise SpecError("schema", schema, str(SCHEMA_VERSION))
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                raise SpecError(
                    key, data[key], ", ".join(names), f"unknown field{'; did you mean ' + repr(close[0]) + '?' if close else ''}"
                )
        if "widths" in data and "width" not in data and isinstance(data["widths"], list | tuple) and data["widths"]:
            data["width"] = data["widths"][0]
        return cls(**data)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=indent is None)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as err:
            raise SpecError("<spec>", text[:40], "valid JSON", str(err)) from None
        except RecursionError:
            raise SpecError("<spec>", text[:40], "valid JSON", "nested too deeply") from None
        return cls.from_dict(data)

    @property
    def arch_id(self) -> str:
        """Stable content hash of the canonical JSON (12 hex digits)."""
        if "id" not in self._cache:
            canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            self._cache["id"] = hashlib.sha256(canon.encode()).hexdigest()[:12]
        return self._cache["id"]

    def replace(self, **changes: Any) -> ArchSpec:
        return dataclasses.replace(self, **changes)

    def summary(self) -> str:
        """One line for tables and hover text."""
        optional = BLOCKS.get(self.block.type).optional
        shown = [(k, v) for k, v in self.block.params if optional.get(k, _ABSENT) != v]
        blocks = f"{self.block.type}({', '.join(f'{k}={v}' for k, v in shown)})"
        skip = f"{self.skip.type}({', '.join(f'{k}={v}' for k, v in self.skip.params)})"
        dims = " 3-D" if self.spatial_dims == 3 else ""
        return f"d{self.depth}{dims} w{'/'.join(map(str, self.level_widths))} {blocks} {skip}"
