"""Live-storage tracking: the bytes of every storage a forward pass allocates, while alive.

A TorchDispatchMode records each new output storage (deduplicated by storage, so views and
in-place ops count once) and drops its bytes through a weakref callback when it dies. On
the meta device the same code gives exact figures in milliseconds; the meta fast paths
here (memoised outputs, direct pointwise and resize outputs) keep a 36-block network's
forward pass quick. FLOPs are summed with torch's own FlopCounterMode formulas on the way.
All use of torch's dispatch internals lives in this module.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry


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


def _shapes_of(out) -> list | tuple:
    """What rebuilds an op's output: a list for one tensor, a tuple (None kept in place)
    for several: backward ops such as convolution_backward return None for the gradients
    their output mask did not ask for."""
    if isinstance(out, torch.Tensor):
        return [(tuple(out.shape), out.stride(), out.dtype)]
    return tuple(None if t is None else (tuple(t.shape), t.stride(), t.dtype) for t in out)


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
        self.born: dict[int, int] = {}  # storage -> its birth number: what lived at the peak can be read after
        self.births = 0
        self.peak_birth = 0  # the birth number at the moment of the peak

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = _pointwise(func, args, kwargs) if func not in _UPSAMPLE else _upsample(func, args)
        if out is not None:  # no FLOP formula applies to these ops
            self._track(out)
            return out
        key = _meta_key(func, args, kwargs) if _returns_new(func) else None
        hit = _META_CACHE.get(key) if key is not None else None
        if hit is not None:
            metas, flops = hit
            outs = [None if m is None else torch.empty_strided(m[0], m[1], dtype=m[2], device="meta") for m in metas]
            out = outs[0] if not isinstance(metas, tuple) else tuple(outs)
        else:
            out = func(*args, **(kwargs or {}))
            counter = flop_registry.get(func._overloadpacket)
            flops = counter(*args, **(kwargs or {}), out_val=out) if counter is not None else 0
            if key is not None and len(_META_CACHE) < _META_CACHE_MAX:
                _META_CACHE[key] = (_shapes_of(out), flops)
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
        self.births += 1
        self.born[key] = self.births
        self.live += n
        if self.live > self.peak:
            self.peak, self.peak_birth = self.live, self.births
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.live -= self.sizes.pop(key, 0)

    def bytes_of(self, tensors: list[torch.Tensor]) -> int:
        """Bytes of the distinct tracked storages among `tensors`."""
        keys = {_key(t) for t in tensors}
        return sum(self.sizes.get(k, 0) for k in keys)
