"""Will it fit? Memory predicted on the meta device, checked before anything is allocated.

A profile at 3x40000x40000, a training run at 8000x8000 with batch 64 or a bundle whose
spec says width 100000 would each ask for far more memory than a machine has, and the
process would be killed or swap for minutes. The cost model answers on the meta device
(shapes only, no allocation), so the request is refused up front with both figures.
"""

from __future__ import annotations

import math
import os

import torch

from ..errors import UserError
from ..spec import ArchSpec

ADAM_STATES = 2  # AdamW keeps two moments per parameter
# Elements of the largest tensor a request may make: torch counts storage in signed 64-bit
# bytes, so even the meta device fails (RuntimeError, OverflowError) far beyond this.
MAX_ELEMENTS = 2**56


def available_bytes(device: str | torch.device) -> int | None:
    """Memory a new allocation can still get on `device` (None when unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pages = getattr(os, "sysconf", lambda _: -1)("SC_AVPHYS_PAGES")
        return pages * os.sysconf("SC_PAGE_SIZE") if pages > 0 else None


def param_bytes(spec: ArchSpec, itemsize: int = 4) -> int:
    from ..model import build_model

    return sum(p.numel() for p in build_model(spec, "meta").parameters()) * itemsize


def inference_bytes(spec: ArchSpec, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> int:
    """Weights plus the peak of live activations of one no-grad forward pass."""
    from ..model import build_model
    from .memory import measure

    model = build_model(spec, "meta").to(dtype).eval()
    peak = measure(model, torch.empty(shape, device="meta", dtype=dtype)).peak_bytes
    return peak + param_bytes(spec, torch.empty((), dtype=dtype).element_size())


def training_bytes(spec: ArchSpec, batch: int, size: tuple[int, int]) -> int:
    """A training step's rough peak: the activations autograd keeps for the backward pass
    (a grad-enabled forward on meta) plus weights, gradients and AdamW's two moments."""
    from ..model import build_model
    from .tracker import LiveStorages

    model = build_model(spec, "meta").train()
    x = torch.empty((batch, spec.in_channels, *size), device="meta")
    keep = list(model.parameters()) + list(model.buffers()) + [x]
    with LiveStorages(keep) as mode:
        y = model(x)
        saved = mode.peak
        del y
    return saved + x.nbytes + (2 + ADAM_STATES) * param_bytes(spec)


def largest_tensor(spec: ArchSpec, batch: int, size: tuple[int, ...]) -> int:
    """An upper bound on the elements of any activation of `spec` at batch x size: every
    level at the padded full resolution, with 2^dims times all the channels of the network."""
    m = spec.multiple
    padded = math.prod(-(-int(s) // m) * m for s in size)
    channels = 2 ** len(size) * (sum(spec.level_widths) + spec.in_channels + spec.out_channels)
    return int(batch) * padded * channels


def check_sizes(spec: ArchSpec, batch: int, size: tuple[int, ...], what: str) -> None:
    """UserError for a request whose tensors could not even be described (sizes beyond
    64-bit counts), before any model or tensor is made on any device."""
    n = largest_tensor(spec, batch, size)
    if n > MAX_ELEMENTS:
        raise UserError(
            f"{what}: too large to profile or train (tensors of up to about {n:.3g} elements, "
            f"at most {MAX_ELEMENTS:.3g}); allowed: a smaller size, batch or width"
        )


def check_fits(needed: int, device: str | torch.device, what: str) -> None:
    """UserError when `needed` bytes exceed what `device` has available; `what` names the
    request (e.g. "input 3x40000x40000, batch 1")."""
    have = available_bytes(device)
    if have is not None and needed > have:
        raise UserError(
            f"{what}: needs about {_gib(needed)} on {torch.device(device).type} (predicted on the meta device), "
            f"{_gib(have)} is available; allowed: a smaller size, batch or width"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.2f} GiB" if n >= 2**28 else f"{n / 2**20:,.1f} MiB"
