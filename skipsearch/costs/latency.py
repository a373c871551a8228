"""Forward latency: the median time of one inference forward pass, batch 1, on a device.

Warm-up runs first (allocator, kernel selection, lazy inits), then `repeats` timed runs;
the median is the figure and the interquartile range its spread. On CUDA each run is timed
with events around the forward pass after a synchronisation; on the CPU with the wall
clock, at the thread count the process runs with (a Ray trial's CPU share).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ..spec import ArchSpec


@dataclass(frozen=True)
class Latency:
    median_ms: float
    iqr_ms: float  # interquartile range of the timed runs
    runs: int
    device: str
    threads: int

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "latency_ms": self.median_ms,
            "latency_ms_iqr": self.iqr_ms,
            "latency_runs": self.runs,
            "latency_device": self.device,
            "latency_threads": self.threads,
        }


def latency(
    spec: ArchSpec, input_shape: tuple[int, int, int], device: str = "cpu", warmup: int = 3, repeats: int = 15
) -> Latency:
    """Median forward latency of `spec` (fresh weights, eval mode, no grad) at batch 1."""
    from ..model import build_model

    if repeats < 3:
        raise ValueError("repeats: at least 3 runs make a median and a spread")
    dev = torch.device(device)
    model = build_model(spec).to(dev).eval()
    x = torch.randn((1, *input_shape), device=dev)
    times: list[float] = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            ms = _timed_cuda(model, x) if dev.type == "cuda" else _timed_cpu(model, x)
            if i >= warmup:
                times.append(ms)
    q1, _, q3 = statistics.quantiles(times, n=4)
    return Latency(statistics.median(times), q3 - q1, repeats, dev.type, torch.get_num_threads())


def _timed_cpu(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return (time.perf_counter() - start) * 1000


def _timed_cuda(model: torch.nn.Module, x: torch.Tensor) -> float:
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(x.device)
    begin.record()
    model(x)
    end.record()
    torch.cuda.synchronize(x.device)
    return float(begin.elapsed_time(end))
