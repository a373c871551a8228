"""Skip memory and activation memory: analytic (from the spec) and measured (live storages).

Skip memory is defined for inference, no grad: the bytes of every tensor produced by the
encoder or the skip design that the decoder still needs, read after each encoder level
(after its down operator), after the bottleneck and after each decoder level. Its maximum
over that timeline is *the* skip memory. M_E1 = bytes of E1 = width x H x W of the padded
input, per image.

The measurement watches every storage that the forward pass allocates (a
TorchDispatchMode, deduplicated by storage so views and in-place ops count once, freed
through a weakref callback) and reads, at each stage, the live bytes minus the main-path
tensor and the input kept for a restore head. On the meta device this is exact and takes
milliseconds; on real tensors it measures the code as it runs.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry

from ..model import UNet
from ..skips import SKIPS
from ..skips.base import Sizes, stages
from ..spec import ArchSpec


def level_sizes(spec: ArchSpec, height: int, width: int) -> Sizes:
    """(h, w) of levels 1..depth+1 for an input of height x width (after padding)."""
    m = spec.multiple
    h, w = -(-height // m) * m, -(-width // m) * m
    return [(h >> i, w >> i) for i in range(spec.depth + 1)]


def _key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


# Meta-device outputs of non-aliasing ops, keyed by op and argument metadata. torch's
# meta kernels for elementwise ops and reductions run Python reference code (~0.1-0.2 ms
# a call, the bulk of a meta forward), while a U-Net repeats the same op at the same
# shapes many times; the output's shape, strides and dtype are all its storage needs.
_META_CACHE: dict[tuple, tuple[list[tuple], int]] = {}
_META_CACHE_MAX = 50_000


def _meta_key(func, args, kwargs) -> tuple | None:
    """A hashable key, or None unless some argument is a meta tensor and none is on
    another device (factory calls without tensor arguments are never memoised)."""
    parts: list = [func]
    metas = 0
    for a in (*args, *sorted((kwargs or {}).items())):
        if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], str):  # a kwarg
            parts.append(a[0])
            a = a[1]
        if isinstance(a, torch.Tensor):
            if a.device.type != "meta":
                return None
            metas += 1
            parts.append((tuple(a.shape), a.stride(), a.dtype))
        elif isinstance(a, list | tuple):
            if any(isinstance(v, torch.Tensor) for v in a):
                return None
            parts.append(tuple(a))
        elif a is None or isinstance(a, int | float | bool | str | torch.dtype | torch.device | torch.layout):
            parts.append(a)
        else:
            return None
    return tuple(parts) if metas else None


_POINTWISE = {
    getattr(torch.ops.aten, name)
    for name in ("add", "sub", "mul", "div", "sigmoid", "gelu", "relu", "sqrt", "rsqrt", "pow", "neg", "exp", "tanh", "silu")
}


def _pointwise(func, args, kwargs) -> torch.Tensor | None:
    """The output of a plain arithmetic op whose tensor inputs are contiguous meta tensors
    of one float dtype: a new contiguous tensor of the broadcast shape, which is exactly
    what the kernel would allocate; None when anything is less simple."""
    if func._overloadpacket not in _POINTWISE or torch.Tag.inplace in func.tags:
        return None
    if any(k not in ("alpha", "approximate") for k in kwargs or {}):
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors or any(
        t.device.type != "meta" or t.dtype != tensors[0].dtype or not t.dtype.is_floating_point or not t.is_contiguous()
        for t in tensors
    ):
        return None
    if any(not isinstance(a, torch.Tensor | int | float) for a in args):
        return None
    return torch.empty(_broadcast([tuple(t.shape) for t in tensors]), dtype=tensors[0].dtype, device="meta")


def _broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """NumPy broadcasting of shapes (torch.broadcast_shapes is ~40 us a call)."""
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    for s in shapes:
        for i, n in enumerate(s, rank - len(s)):
            if n != 1:
                if out[i] not in (1, n):
                    raise RuntimeError(f"shapes {shapes} do not broadcast")
                out[i] = n
    return tuple(out)


_UPSAMPLE = {
    torch.ops.aten.upsample_bicubic2d.default,
    torch.ops.aten.upsample_bilinear2d.default,
    torch.ops.aten.upsample_nearest2d.default,
}


def _upsample(func, args) -> torch.Tensor | None:
    """Resizes name their output size; torch's meta kernel for bicubic takes ~5 ms."""
    if func not in _UPSAMPLE or len(args) < 2 or args[1] is None:
        return None
    x = args[0]
    if x.device.type != "meta" or not x.is_contiguous() or x.dim() != 4:
        return None
    return torch.empty((*x.shape[:2], *args[1]), dtype=x.dtype, device="meta")


def _returns_new(func) -> bool:
    returns = func._schema.returns
    return len(returns) >= 1 and all(r.alias_info is None and str(r.type) == "Tensor" for r in returns)


class LiveStorages(TorchDispatchMode):
    """Bytes of storages allocated under this mode and still alive; the running peak.

    Also sums FLOPs with torch's own formulas (the FlopCounterMode registry), so one
    forward pass yields memory and FLOPs together.
    """

    def __init__(self, exclude: list[torch.Tensor]) -> None:
        super().__init__()
        self.sizes: dict[int, int] = {}
        self.ignored = {_key(t) for t in exclude}
        self.live = 0
        self.peak = 0
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = _pointwise(func, args, kwargs) if func not in _UPSAMPLE else _upsample(func, args)
        if out is not None:  # no FLOP formula applies to these ops
            self._track(out)
            return out
        key = _meta_key(func, args, kwargs) if _returns_new(func) else None
        hit = _META_CACHE.get(key) if key is not None else None
        if hit is not None:
            metas, flops = hit
            outs = [torch.empty_strided(shape, stride, dtype=dtype, device="meta") for shape, stride, dtype in metas]
            out = outs[0] if len(outs) == 1 else tuple(outs)
        else:
            out = func(*args, **(kwargs or {}))
            counter = flop_registry.get(func._overloadpacket)
            flops = counter(*args, **(kwargs or {}), out_val=out) if counter is not None else 0
            if key is not None and len(_META_CACHE) < _META_CACHE_MAX:
                leaves = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
                _META_CACHE[key] = ([(tuple(t.shape), t.stride(), t.dtype) for t in leaves], flops)
        self.flops += flops
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self.sizes or key in self.ignored:
            return
        self.sizes[key] = n = storage.nbytes()
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.live -= self.sizes.pop(key, 0)

    def bytes_of(self, tensors: list[torch.Tensor]) -> int:
        """Bytes of the distinct tracked storages among `tensors`."""
        keys = {_key(t) for t in tensors}
        return sum(self.sizes.get(k, 0) for k in keys)


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


def analytic_timeline(spec: ArchSpec, shape: tuple[int, int, int, int], itemsize: int) -> list[Stage]:
    """Skip memory at each stage from the spec alone (no tensors, no modules)."""
    n, _, h, w = shape
    sizes = level_sizes(spec, h, w)
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


_THOP_CACHE: dict[tuple, float] = {}


def _thop_rules(model: nn.Module) -> dict[nn.Module, object]:
    """thop's rule for each module that has one (thop's own sum stops at the first module
    with a rule on each path; ours has rules on leaves only)."""
    from thop.profile import register_hooks

    from .counts import RULES

    out = {}
    for m in model.modules():
        rule = RULES.get(type(m)) or register_hooks.get(type(m))
        if rule is not None and not isinstance(m, nn.Sequential | nn.ModuleList):
            out[m] = rule
    return out


def _shape_hooks(rules: dict[nn.Module, object], seen: list) -> list:
    """Forward hooks that only note shapes: no tensor code may run inside the measured
    pass (torch's first-use paths can keep the caller's frames, and so tensors, alive)."""

    def hook(mod, inputs, output) -> None:
        shapes = tuple(tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor))
        seen.append((mod, shapes, tuple(output.shape), output.dtype))

    return [m.register_forward_hook(hook) for m in rules]


def _thop_total(rules: dict[nn.Module, object], seen: list) -> int:
    """Apply thop's rules to the noted shapes (on meta tensors), memoised by module
    configuration and shapes."""
    total = 0.0
    for mod, shapes, out_shape, dtype in seen:
        key = (type(mod), mod.extra_repr(), getattr(mod, "bias", None) is not None, shapes, out_shape)
        if key not in _THOP_CACHE:
            xs = tuple(torch.empty(s, device="meta", dtype=dtype) for s in shapes)
            had = "total_ops" in mod._buffers
            mod.total_ops = torch.zeros(1, dtype=torch.float64)
            rules[mod](mod, xs, torch.empty(out_shape, device="meta", dtype=dtype))
            _THOP_CACHE[key] = float(mod.total_ops.item())
            if not had:
                del mod.total_ops
        total += _THOP_CACHE[key]
    return int(total)


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
    rules = _thop_rules(model) if macs else {}
    seen: list = []
    hooks = _shape_hooks(rules, seen)
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
    return Measured(timeline, peak, tuple(y.shape), int(mode.flops), _thop_total(rules, seen) if macs else None)
