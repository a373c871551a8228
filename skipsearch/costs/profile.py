"""profile(spec, input_shape): every cost of an architecture in one object."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserError
from ..model import build_model
from ..spec import ArchSpec
from .counts import count_flops, count_macs, count_params
from .fit import check_fits, inference_bytes
from .memory import Stage, analytic_timeline, gc_paused, level_sizes, measure

DEFAULT_SIDE = {2: 256, 3: 64}  # the default input: 256 x 256 images, 64^3 volumes

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("meta", "cpu", "cuda")


@dataclass
class Profile:
    arch_id: str
    input_shape: tuple[int, ...]  # (C, H, W), or (C, D, H, W) for volumes
    batch: int
    dtype: str
    device: str
    params: int
    macs: int | None
    flops: int | None
    m_e1_bytes: int
    skip_memory_bytes: int
    skip_memory_analytic_bytes: int
    peak_activation_bytes: int
    timeline: list[Stage]
    cuda_peak_activation_bytes: int | None = None

    @property
    def skip_memory_me1(self) -> float:
        return self.skip_memory_bytes / self.m_e1_bytes

    @property
    def peak_stage(self) -> Stage:
        return max(self.timeline, key=lambda s: s.skip_bytes)

    def to_dict(self) -> dict[str, Any]:
        timeline = [{**s.to_dict(), "skip_me1": s.skip_bytes / self.m_e1_bytes} for s in self.timeline]
        return {
            "arch_id": self.arch_id,
            "input": list(self.input_shape),
            "batch": self.batch,
            "dtype": self.dtype,
            "device": self.device,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "m_e1_bytes": self.m_e1_bytes,
            "skip_memory_bytes": self.skip_memory_bytes,
            "skip_memory_me1": self.skip_memory_me1,
            "skip_memory_analytic_bytes": self.skip_memory_analytic_bytes,
            "skip_memory_levels": self.peak_stage.levels,
            "peak_activation_bytes": self.peak_activation_bytes,
            "cuda_peak_activation_bytes": self.cuda_peak_activation_bytes,
            "timeline": timeline,
        }


def check_options(spec: ArchSpec, input_shape: tuple[int, ...], batch: int, dtype: str, device: str) -> None:
    want = 1 + spec.spatial_dims
    ok = len(input_shape) == want and all(isinstance(v, int) and not isinstance(v, bool) for v in input_shape)
    if not ok or min(input_shape) < 1:
        form = "(C, H, W), three" if want == 3 else "(C, D, H, W) for a volume network, four"
        raise UserError(f"input: {input_shape!r}; allowed: {form} positive integers")
    c = input_shape[0]
    if c != spec.in_channels:
        raise UserError(f"input: {c} channels, but the spec takes in_channels={spec.in_channels}")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise UserError(f"batch: {batch!r}; allowed: an integer >= 1")
    if dtype not in DTYPES:
        raise UserError(f"dtype: unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    if device not in DEVICES:
        raise UserError(f"device: unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: cuda was asked for but no CUDA GPU is available here; allowed: meta, cpu")


def profile(
    spec: ArchSpec,
    input_shape: tuple[int, ...] | None = None,
    *,
    batch: int = 1,
    dtype: str = "float32",
    device: str = "meta",
    counts: bool = True,
) -> Profile:
    """Params, MACs (thop), FLOPs (FlopCounterMode) and skip / activation memory.

    Memory is measured on `device` (meta: exact, no real computation); MACs and FLOPs
    depend only on shapes and are always counted on meta. counts=False skips MACs and
    FLOPs (the cheap path a search uses for constraints on memory alone).
    """
    input_shape = tuple(input_shape or (spec.in_channels, *(DEFAULT_SIDE[spec.spatial_dims],) * spec.spatial_dims))
    check_options(spec, input_shape, batch, dtype, device)
    with gc_paused():
        return _profile(spec, input_shape, batch, dtype, device, counts)


def _profile(spec: ArchSpec, input_shape: tuple[int, ...], batch: int, dtype: str, device: str, counts: bool) -> Profile:
    torch_dtype = DTYPES[dtype]
    shape = (batch, *input_shape)
    meta_model = build_model(spec, "meta").eval()
    if torch_dtype != torch.float32:
        meta_model = meta_model.to(torch_dtype)
    if device != "meta":
        where = f"input {'x'.join(map(str, input_shape))}, batch {batch}"
        check_fits(inference_bytes(spec, shape, torch_dtype), device, where)
    model = meta_model if device == "meta" else build_model(spec).to(device=device, dtype=torch_dtype).eval()
    x = (
        torch.randn(shape, device=device, dtype=torch_dtype)
        if device != "meta"
        else torch.empty(shape, device="meta", dtype=torch_dtype)
    )

    cuda_peak = None
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    measured = measure(model, x, macs=counts and device == "meta")
    if device == "cuda":
        torch.cuda.synchronize()
        cuda_peak = torch.cuda.max_memory_allocated() - base + x.nbytes

    itemsize = x.element_size()
    analytic = analytic_timeline(spec, shape, itemsize)
    full = math.prod(level_sizes(spec, *input_shape[1:])[0])  # pixels (voxels) of a level-1 map
    return Profile(
        arch_id=spec.arch_id,
        input_shape=input_shape,
        batch=batch,
        dtype=dtype,
        device=device,
        params=count_params(meta_model),
        macs=(measured.macs if device == "meta" else count_macs(meta_model, shape, "meta")) if counts else None,
        flops=(measured.flops if device == "meta" else count_flops(meta_model, shape, "meta")) if counts else None,
        m_e1_bytes=spec.level_widths[0] * full * batch * itemsize,
        skip_memory_bytes=max(s.skip_bytes for s in measured.timeline),
        skip_memory_analytic_bytes=max(s.skip_bytes for s in analytic),
        peak_activation_bytes=measured.peak_bytes,
        timeline=measured.timeline,
        cuda_peak_activation_bytes=cuda_peak,
    )
