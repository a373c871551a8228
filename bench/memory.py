"""Skip memory of every preset: analytic vs measured on meta vs measured on real tensors.

    python bench/memory.py [--sizes 256 512] [--device cpu|cuda] [--no-write]

Real-tensor runs build the network with real weights and run a no-grad forward while
the live storages are tracked, so a design that claims less memory must really hold
less. On CUDA the table adds torch.cuda.max_memory_allocated (activations only: the
weights are subtracted) beside the meta prediction of the activation peak.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine, write_section  # noqa: E402

from skipsearch import list_presets, preset  # noqa: E402
from skipsearch.costs.profile import profile  # noqa: E402


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--presets", nargs="+", default=list_presets())
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    real = args.device
    head = (
        f"| preset | input | analytic skip MiB | meta skip MiB | {real} skip MiB | M_E1 | meta peak MiB | {real} peak MiB |"
        + (" CUDA max_allocated MiB |" if real == "cuda" else "")
        + f" {real} s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for size in args.sizes:
        for name in args.presets:
            spec = preset(name)
            shape = (spec.in_channels, size, size)
            meta = profile(spec, shape, counts=False)
            t = time.perf_counter()
            run = profile(spec, shape, device=real, counts=False)
            secs = time.perf_counter() - t
            same = [s.skip_bytes for s in meta.timeline] == [s.skip_bytes for s in run.timeline]
            row = (
                f"| {name} | {size}x{size} | {mib(meta.skip_memory_analytic_bytes)} | {mib(meta.skip_memory_bytes)} | "
                f"{mib(run.skip_memory_bytes)}{'' if same else ' (timeline differs!)'} | {meta.skip_memory_me1:.4g} | "
                f"{mib(meta.peak_activation_bytes)} | {mib(run.peak_activation_bytes)} |"
            )
            if real == "cuda":
                row += f" {mib(run.cuda_peak_activation_bytes)} |"
            lines.append(row + f" {secs:.1f} |")
            print(lines[-1], flush=True)
    body = (
        f"## Skip memory of the presets ({real})\n\n"
        f"`python bench/memory.py --device {real} --sizes {' '.join(map(str, args.sizes))}` on {machine()}.\n"
        "Batch 1, float32, no grad. Skip memory = the maximum over the timeline (after each encoder level, the\n"
        "bottleneck and each decoder level) of the bytes the skip path holds; peak = all live activations\n"
        "including the input. Meta and real-tensor figures come from the same live-storage tracker.\n\n" + "\n".join(lines)
    )
    if not args.no_write:
        write_section(f"memory-{real}", body)


if __name__ == "__main__":
    main()
