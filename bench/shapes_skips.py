"""The five skip designs on `shapes` at one fixed CPU budget: metric against skip memory.

    python bench/shapes_skips.py [--steps 400] [--seeds 0 1] [--block naf] [--no-write]

One block family, depth 4, width 16, 64x64, batch 8, lr 1e-3; every design gets the same
steps and seeds. Skip memory is the meta-device figure at the training size (and in M_E1).
This is also the check that `shapes` separates designs: without skips the network has to
carry the exact places of the holes and spikes through the bottleneck.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine, write_section  # noqa: E402

from skipsearch import ArchSpec  # noqa: E402
from skipsearch.costs.profile import profile  # noqa: E402
from skipsearch.tasks import make_task  # noqa: E402
from skipsearch.train import Budget, evaluate  # noqa: E402

DESIGNS = [
    ("none", {"type": "none"}),
    ("plain", {"type": "plain"}),
    ("msiam_iem (min)", {"type": "msiam_iem", "target": "min"}),
    ("msiam_iem (max)", {"type": "msiam_iem", "target": "max"}),
    ("sdi", {"type": "sdi", "channels": 16}),
    ("dense", {"type": "dense"}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--block", default="naf")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    task = make_task("shapes", train_samples=1000, val_samples=200)
    block = {"type": "cmrf", "n": 4} if args.block == "cmrf" else {"type": args.block}
    rows = [
        "| skip design | dice (mean of seeds) | iou | per seed dice | skip memory @64x64 | M_E1 | params | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, skip in DESIGNS:
        spec = task.adapt(ArchSpec(block=block, depth=4, width=16, skip=skip))
        runs = [evaluate(spec, task, Budget(steps=args.steps, batch=8, size=(64, 64), lr=1e-3, seed=s)) for s in args.seeds]
        prof = profile(spec, (3, 64, 64), counts=False)
        dice = [r["dice"] for r in runs]
        rows.append(
            f"| {name} | {statistics.mean(dice):.3f} | {statistics.mean(r['iou'] for r in runs):.3f} | "
            f"{', '.join(f'{d:.3f}' for d in dice)} | {prof.skip_memory_bytes / 1024:.0f} KiB | {prof.skip_memory_me1:.3g} | "
            f"{prof.params:,} | {sum(r['train_time_s'] for r in runs):.0f} |"
        )
        print(rows[-1], flush=True)
    body = (
        f"## Skip designs on `shapes` ({args.block}, fixed CPU budget)\n\n"
        f"`python bench/shapes_skips.py --steps {args.steps} --seeds {' '.join(map(str, args.seeds))} --block {args.block}` "
        f"on {machine()}.\nDepth 4, width 16, 64x64, batch 8, AdamW lr 1e-3 with cosine decay, {args.steps} steps; "
        "validation on 200 held-out images.\n\n" + "\n".join(rows)
    )
    if not args.no_write:
        write_section(f"shapes-skips-{args.block}", body)


if __name__ == "__main__":
    main()
