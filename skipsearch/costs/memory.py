"""Skip memory and activation memory: analytic (from the spec) and measured (live storages).

Skip memory is defined for inference, no grad: the bytes of every tensor produced by the
encoder or the skip design that the decoder still needs, read after each encoder level
(after its down operator), after the bottleneck and after each decoder level. Its maximum
over that timeline is *the* skip memory. M_E1 = bytes of E1 = width x H x W of the padded
input, per image.

The measurement runs the forward pass under the live-storage tracker (tracker.py) and reads,
at each stage, the live bytes minus the main-path tensor and the input kept for a restore
head. On the meta device this is exact and takes milliseconds; on real tensors it measures
the code as it runs. MACs come from thop's rules replayed on the shapes the same pass noted
(thop_replay.py).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from ..model import UNet
from ..skips import SKIPS
from ..skips.base import Sizes, stages
from ..spec import ArchSpec
from .thop_replay import shape_hooks, thop_rules, thop_total
from .tracker import LiveStorages


def level_sizes(spec: ArchSpec, *sides: int) -> Sizes:
    """The spatial size of levels 1..depth+1, (h, w) or (d, h, w), for an input with these
    sides (after padding each to the spec's multiple)."""
    m = spec.multiple
    padded = [-(-s // m) * m for s in sides]
    return [tuple(s >> i for s in padded) for i in range(spec.depth + 1)]


@dataclass
class Stage:
    name: str  # "encoder 1" .. "bottleneck" .. "decoder 1"
    skip_bytes: int
    live_bytes: int | None = None  # all live activations (measured only)
    levels: dict[str, int] = field(default_factory=dict)  # skip bytes by label

    def to_dict(self) -> dict:
        return {"stage": self.name, "skip_bytes": self.skip_bytes, "live_bytes": self.live_bytes, "levels": self.levels}


def _stage_name(kind: str, level: int) -> str:
    return "bottleneck" if kind == "bottleneck" else f"{kind} {level}"


def analytic_timeline(spec: ArchSpec, shape: tuple[int, ...], itemsize: int) -> list[Stage]:
    """Skip memory at each stage from the spec alone (no tensors, no modules); `shape` is
    (N, C, H, W), or (N, C, D, H, W) for volumes."""
    n, _, *sides = shape
    sizes = level_sizes(spec, *sides)
    timeline = SKIPS.get(spec.skip.type).analytic(spec, sizes)
    out = []
    for (kind, level), held in zip(stages(spec.depth), timeline, strict=True):
        levels = {k: v * n * itemsize for k, v in held.items()}
        out.append(Stage(_stage_name(kind, level), sum(levels.values()), None, levels))
    return out


@dataclass
class Measured:
    timeline: list[Stage]
    peak_bytes: int  # peak of all live activations, the input included
    output_shape: tuple[int, ...]
    flops: int  # FlopCounterMode's count
    macs: int | None  # thop's count (its rule table plus ours), when asked for


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: lifetimes here are refcounts, and collections
    triggered by building and running hundreds of small modules only cost time."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


_WARM = False


def _warm_up() -> None:
    """Take torch's first-use paths for dispatch modes and module hooks once, outside any
    measurement: the first dispatch imports torch._dynamo lazily, and frames on the stack
    at that moment (holding whatever tensors they hold) stay alive, which would show up
    as phantom skip memory."""
    global _WARM
    if _WARM:
        return
    conv = nn.Conv2d(1, 1, 1, device="meta")
    handle = conv.register_forward_hook(lambda *a: None)
    with torch.no_grad(), LiveStorages([]):
        conv(torch.empty(1, 1, 2, 2, device="meta")) + 1
        torch.zeros(1, dtype=torch.float64).item()
    handle.remove()
    _WARM = True


def measure(model: UNet, x: torch.Tensor, macs: bool = False) -> Measured:
    """Run one no-grad forward and read the live storages at each stage."""
    _warm_up()
    design = model.skip
    timeline: list[Stage] = []
    keep = list(model.parameters()) + list(model.buffers()) + [x]
    rules = thop_rules(model) if macs else {}
    seen: list = []
    hooks = shape_hooks(rules, seen)
    with gc_paused(), torch.no_grad(), LiveStorages(keep) as mode:

        def probe(kind, level, main, state, pinned) -> None:
            pinned_bytes = mode.bytes_of([pinned]) if pinned is not None else 0
            skip = mode.live - mode.bytes_of([main]) - pinned_bytes
            levels = {k: mode.bytes_of(v) for k, v in design.held(state).items()}
            timeline.append(Stage(_stage_name(kind, level), skip, mode.live + x.nbytes, levels))

        try:
            y = model(x, probe=probe)
        finally:
            for h in hooks:
                h.remove()
        peak = mode.peak + x.nbytes
    return Measured(timeline, peak, tuple(y.shape), int(mode.flops), thop_total(rules, seen) if macs else None)
