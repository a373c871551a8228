"""The skip contract.

The encoder hands each E_l to the design with ``push`` as soon as it exists; the
decoder asks for level l with ``pull`` when it needs it. A design keeps in ``state``
(a dict that lives for one forward pass) only what it must, so what the forward pass
really holds is what the design claims. Levels are 1-based, deepest pulled first.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..errors import SpecError
from ..registry import Registry

if TYPE_CHECKING:
    from ..spec import ArchSpec

State = dict[Any, Any]
Sizes = list[tuple[int, ...]]  # (h, w), or (d, h, w) for volumes, of levels 1..depth+1 for the padded input
# held elements per label ("L1".. for level l, "agg" for a fused map), one dict per stage
Timeline = list[dict[str, int]]


def stages(depth: int) -> list[tuple[str, int]]:
    """The points where skip memory is read: after each encoder level (after its down
    operator), after the bottleneck, after each decoder level (deepest first)."""
    enc = [("encoder", level) for level in range(1, depth + 1)]
    return [*enc, ("bottleneck", depth + 1), *[("decoder", level) for level in range(depth, 0, -1)]]


def area(sizes: Sizes, level: int) -> int:
    """Pixels (voxels, for volumes) of one channel at `level`."""
    return math.prod(sizes[level - 1])


class SkipDesign(nn.Module):
    """A skip design: an nn.Module whose constructor takes plain numbers (level widths,
    channels, its parameters), so the standalone export can write the call out, and whose
    ``arguments`` derives them from a spec."""

    name: ClassVar[str]  # set by SKIPS.register
    defaults: ClassVar[dict[str, Any]] = {}
    color: ClassVar[str | None] = None  # dashboard colour; None: derived from the name
    test_params: ClassVar[dict[str, Any]] = {}  # small parameters for quick contract tests

    @classmethod
    def resolve(cls, params: dict[str, Any], spec: ArchSpec) -> dict[str, Any]:
        """Validate complete params against the spec; fill derived values (canonical form)."""
        return params

    @classmethod
    def arguments(cls, spec: ArchSpec, stage: Any, up: Any) -> dict[str, Any]:
        """The constructor's keyword arguments for `spec`. `stage(c_in, c_out, n, stride)`
        builds a stage of the spec's blocks and `up(c_in, c_out)` its up operator, for
        designs with layers of their own; pass them through unchanged (the standalone
        export calls this with their names in their place)."""
        return {}

    @classmethod
    def from_spec(cls, spec: ArchSpec) -> SkipDesign:
        from ..blocks import make_stage
        from ..operators import make_up

        up = functools.partial(make_up, spec.up, dims=spec.spatial_dims)
        args = cls.arguments(spec, functools.partial(make_stage, spec), up)
        if spec.spatial_dims != 2 and "dims" in inspect.signature(cls.__init__).parameters:
            args["dims"] = spec.spatial_dims  # volumes: a design with layers of its own builds them in 3-D
        return cls(**args)

    def begin(self) -> State:
        return {}

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        raise NotImplementedError

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def merged_channels(self, level: int, up_channels: int) -> int:
        """Channels of what ``pull`` returns at `level`."""
        raise NotImplementedError

    # -- cost hooks -----------------------------------------------------------------
    @classmethod
    def analytic(cls, spec: ArchSpec, sizes: Sizes) -> Timeline:
        """Elements the skip path holds at each of ``stages(depth)``, from the spec alone."""
        raise NotImplementedError

    def held(self, state: State) -> dict[str, list[torch.Tensor]]:
        """The tensors in `state`, by the labels ``analytic`` uses (for measurement)."""
        return {f"L{k}": [v] for k, v in state.items()}


SKIPS: Registry[type[SkipDesign]] = Registry("skip design", "skip.type")
MERGES = ("add", "concat")  # how a skip feature meets the upsampled decoder tensor


def resolve_merge(params: dict[str, Any], spec: ArchSpec) -> dict[str, Any]:
    """Resolve merge "auto" to the block family's own merge and check that add is possible."""
    from ..blocks import BLOCKS

    merge = params["merge"]
    if merge == "auto":
        merge = BLOCKS.get(spec.block.type).merge
    if merge not in MERGES:
        raise SpecError("skip.merge", merge, "auto, add, concat")
    if merge == "add":
        for level in range(1, spec.depth + 1):
            up, width = spec.up_channels(level), spec.level_widths[level - 1]
            if up != width:
                raise SpecError(
                    "skip.merge",
                    merge,
                    "concat, or an up operator that outputs the level width (pixelshuffle, transposed)",
                    f"up '{spec.up}' gives {up} channels at level {level}, the skip has {width}",
                )
    return {**params, "merge": merge}


def merge(kind: str, up: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """Merge a skip feature into the upsampled decoder tensor (upsampled first when concatenating)."""
    return up + feat if kind == "add" else torch.cat([up, feat], dim=1)
