"""Training memory of every preset: one training step's peak predicted on the meta device
against the same step measured with real CPU tensors, with its breakdown.

    python bench/train_memory.py [--size 128] [--batch 2] [--write]

The two columns come from the same tracker (costs/training.py) over the same step code
(train.train_step); they are expected to be equal to the byte. Also printed: the time each
takes, and the skip memory of the same network at inference (batch 1) for scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import torch

    from skipsearch import list_presets, preset, profile
    from skipsearch.costs.training import train_memory
    from skipsearch.train import Budget

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(2)
    budget = Budget(batch=args.batch, size=(args.size, args.size))
    mib = lambda n: f"{n / 2**20:,.2f}"  # noqa: E731
    lines = [
        f"Batch {args.batch}, {args.size}x{args.size}, fp32, AdamW; MiB.",
        "",
        "| preset | predicted peak (meta) | measured peak (CPU) | equal | weights | gradients at peak | optimizer "
        "| activations at peak | checkpointed levels (predicted = measured) | skip memory (inference, batch 1) "
        "| meta s | CPU s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in list_presets():
        spec = preset(name)
        start = time.perf_counter()
        p = train_memory(spec, budget)
        meta_s = time.perf_counter() - start
        start = time.perf_counter()
        m = train_memory(spec, budget, device="cpu")
        cpu_s = time.perf_counter() - start
        skip = profile(spec, (spec.in_channels, args.size, args.size), counts=False).skip_memory_bytes
        ckpt = Budget(batch=args.batch, size=(args.size, args.size), checkpoint=True)
        cp, cm = train_memory(spec, ckpt), train_memory(spec, ckpt, device="cpu")
        same = p.to_dict()["train"]["breakdown"] == m.to_dict()["train"]["breakdown"] and p.peak_bytes == m.peak_bytes
        lines.append(
            f"| {name} | {mib(p.peak_bytes)} | {mib(m.peak_bytes)} | {'yes' if same else 'NO'} | {mib(p.weights)} "
            f"| {mib(p.gradients)} | {mib(p.optimizer)} | {mib(p.activations)} "
            f"| {mib(cp.peak_bytes)} ({'=' if cp.peak_bytes == cm.peak_bytes else 'NOT ' + mib(cm.peak_bytes)}) "
            f"| {mib(skip)} | {meta_s:.2f} | {cpu_s:.2f} |"
        )
        print(lines[-1], flush=True)
    body = "\n".join(lines)
    if args.write:
        from _report import machine, write_section

        title = "## Training memory: predicted against measured"
        write_section("train-memory", f"{title}\n\n`python bench/train_memory.py --write`\n\n{machine()}.\n\n{body}\n")


if __name__ == "__main__":
    main()
