"""What `gpus: auto` decides for studies/gpu.yaml, predicted on the meta device: each
sampled architecture's training peak at the study's budget, its GPU share on an 80 GiB and
a 141 GiB GPU, and against that, what `gpus: 0.25` (four per GPU by count) would do.

    python bench/gpu_packing.py [--trials 50] [--write]

The architectures are the first `--trials` points of the study's space drawn by a seeded
random sampler. "Trials per GPU" is how many such trials fit one GPU at once when each
takes its share (1 / mean share: an upper bound on what Ray's packing reaches, since
shares are whole hundredths). "Over a quarter" counts the trials whose need exceeds a
quarter of the GPU: those would run out of memory next to three others under `gpus: 0.25`.
No GPU is involved: these are the packing decisions, not a measurement on CUDA.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import optuna

    from skipsearch.costs.training import train_memory
    from skipsearch.errors import SpecError
    from skipsearch.search.config import load_study
    from skipsearch.search.gpus import Gpus, Packing, size

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args()
    cfg = load_study(ROOT / "studies" / "gpu.yaml")
    task = cfg.make_task()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    peaks, seconds = [], []
    while len(peaks) < args.trials:
        try:
            spec = cfg.space.to_spec(cfg.space.suggest(study.ask()), task)
        except SpecError:
            continue
        start = time.perf_counter()
        peaks.append(train_memory(spec, cfg.budget).peak_bytes)
        seconds.append(time.perf_counter() - start)
        print(f"{spec.summary()[:70]:<70} {size(peaks[-1])}", flush=True)
    b = cfg.budget
    lines = [
        f"studies/gpu.yaml: batch {b.batch}, {b.size[0]}x{b.size[1]}, fp32 prediction, AdamW; {len(peaks)} architectures"
        f" of its space (random sampler, seed 0); margin {Packing.margin:.0%}, CUDA context {size(Packing.context)}."
        f" Training peak: median {size(statistics.median(peaks))}, smallest {size(min(peaks))},"
        f" largest {size(max(peaks))}; predicting one took {statistics.median(seconds):.1f} s (median).",
        "",
        "| GPU memory | mean share | trials per GPU (1 / mean share) | largest share | not trainable (share > 1) "
        "| over a quarter (would OOM under gpus: 0.25) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for gib in (80, 141):
        gpus = Gpus(Packing(), gib * 2**30, gib * 2**30, "stated")
        shares = [gpus.share(p) for p in peaks]
        fits = [s for s in shares if s <= 1]
        quarter = sum(Packing().need(p) > gpus.memory / 4 for p in peaks)
        lines.append(
            f"| {gib} GiB | {statistics.mean(fits):.3f} | {1 / statistics.mean(fits):.1f} | {max(shares):.2f} "
            f"| {len(shares) - len(fits)} | {quarter} |"
        )
    body = "\n".join(lines)
    print(body)
    if args.write:
        from _report import machine, write_section

        title = "## GPU packing decisions (gpus: auto, predicted)"
        write_section("gpu-packing", f"{title}\n\n`python bench/gpu_packing.py --write`\n\n{machine()}.\n\n{body}\n")


if __name__ == "__main__":
    main()
