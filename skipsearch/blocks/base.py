"""The block-family contract and the stage builder shared by encoder, decoder and skips."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn

from ..layers import projection
from ..registry import Registry

if TYPE_CHECKING:
    from ..spec import ArchSpec


class BlockFamily:
    """A family of blocks: defaults, native operators and the block's module class.

    Subclasses set the class attributes, ``block`` (the nn.Module class of one block, or
    ``module`` where a parameter picks a variant) and ``arguments`` (its constructor
    arguments). ``changes_channels`` says whether a block
    may map c_in to a different c_out; when it may not (NAFBlock), stages get a 1x1
    projection in front instead.
    """

    name: ClassVar[str]  # set by BLOCKS.register
    symbol: ClassVar[str | None] = None  # dashboard marker; None: derived from the name
    test_params: ClassVar[dict[str, Any]] = {}  # parameters a width-8 contract test needs
    optional: ClassVar[dict[str, Any]] = {}  # parameters left out of the canonical JSON at these values
    defaults: ClassVar[dict[str, Any]] = {}
    merge: ClassVar[str]  # native skip merge: "add" or "concat"
    down: ClassVar[str]
    up: ClassVar[str]
    stem: ClassVar[str]
    changes_channels: ClassVar[bool] = True
    block: ClassVar[type[nn.Module]]  # the module class of one block (see ``module``)

    @classmethod
    def validate(cls, spec: ArchSpec) -> None:
        """Raise SpecError when the family cannot run at one of the spec's widths."""
        params = dict(spec.block.params)
        for width, where in block_widths(spec):
            cls.check_width(params, width, where)

    @classmethod
    def check_width(cls, params: dict[str, Any], width: int, where: str) -> None:
        """Raise SpecError when a block with these params cannot output `width` channels."""

    @classmethod
    def arguments(cls, c_in: Any, c_out: Any, params: dict[str, Any], stride: Any = 1) -> dict[str, Any]:
        """The keyword arguments of ``block`` for one block from c_in to c_out channels;
        `stride` is the level's input pixels per feature pixel (1, 2, 4, ...), for blocks
        whose behaviour depends on scale (NAF's TLC). Pass c_in, c_out and stride through
        unchanged: the standalone export calls this with their names in their place."""
        raise NotImplementedError

    @classmethod
    def module(cls, params: dict[str, Any]) -> type[nn.Module]:
        """The module class of a block with these parameters (``block`` unless a parameter
        picks a variant)."""
        return cls.block

    @classmethod
    def build(cls, c_in: int, c_out: int, params: dict[str, Any], stride: int = 1, dims: int = 2) -> nn.Module:
        """One block; for volumes (dims 3) its constructor also gets dims=3."""
        extra = {"dims": dims} if dims != 2 else {}
        return cls.module(params)(**cls.arguments(c_in, c_out, params, stride), **extra)


BLOCKS: Registry[type[BlockFamily]] = Registry("block family", "block.type")


def make_stage(spec: ArchSpec, c_in: int, c_out: int, n: int, stride: int = 1) -> nn.Sequential:
    """n blocks of the spec's family mapping c_in to c_out channels at `stride` (the
    level's input pixels per feature pixel)."""
    family = BLOCKS.get(spec.block.type)
    params = dict(spec.block.params)
    layers: list[nn.Module] = []
    if c_in != c_out and (n == 0 or not family.changes_channels):
        layers.append(projection(c_in, c_out, spec.spatial_dims))
        c_in = c_out
    for _ in range(n):
        layers.append(family.build(c_in, c_out, params, stride, spec.spatial_dims))
        c_in = c_out
    return nn.Sequential(*layers)


def block_widths(spec: ArchSpec) -> Iterable[tuple[int, str]]:
    """Every (width, place) at which the spec's main path runs blocks."""
    for i, w in enumerate(spec.level_widths[:-1]):
        yield w, f"level {i + 1}"
    yield spec.level_widths[-1], "bottleneck"
