"""Training throughput of evaluate() against a minimal hand-written PyTorch loop.

    python bench/train_throughput.py [--steps 60] [--rounds 3] [--device cpu|cuda] [--no-write]

Same model (same seed), same in-memory data, same batch, same loss and optimiser; the
hand-written loop does nothing else (no schedule, no clipping, no finiteness checks).
Rounds alternate which runs first (A B, B A, ...) so warm-up and machine noise hit both;
the median is kept.
On CUDA it also compares fp32 with bf16 autocast + channels_last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _report import machine, write_section  # noqa: E402

from skipsearch import ArchSpec, build_model, preset  # noqa: E402
from skipsearch.tasks import make_task  # noqa: E402
from skipsearch.train import Budget, evaluate  # noqa: E402


def hand_loop(spec: ArchSpec, task, budget: Budget, device: str) -> float:
    """images/s of the plainest training loop."""
    torch.manual_seed(budget.seed)
    x_all, y_all = task.train_pool(budget.size, budget.seed)
    model = build_model(spec).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=budget.lr)
    g = torch.Generator().manual_seed(budget.seed)
    start = time.perf_counter()
    for _ in range(budget.steps):
        idx = torch.randint(len(x_all), (budget.batch,), generator=g)
        x, y = x_all[idx].to(device), y_all[idx].to(device)
        loss = task.loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return budget.steps * budget.batch / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    task = make_task("shapes", train_samples=256, val_samples=8)
    cases = [
        ("tiny-naf", task.adapt(preset("tiny-naf")), (64, 64), 8),
        ("naf d4 w16 plain", ArchSpec(block="naf", depth=4, width=16), (64, 64), 8),
        ("cmrf d4 w32 msiam_iem", ArchSpec(block={"type": "cmrf", "n": 4}, depth=4, width=32, skip="msiam_iem"), (64, 64), 8),
        ("unet (1 in -> adapted to 3)", task.adapt(preset("unet")), (64, 64), 4),
    ]
    rows = ["| network | input, batch | evaluate() img/s | hand loop img/s | ratio |", "|---|---|---|---|---|"]
    for name, spec, size, batch in cases:
        budget = Budget(steps=args.steps, batch=batch, size=size, device=args.device, grad_clip=None)
        ours, theirs = [], []
        for i in range(args.rounds):  # ABBA: each way goes first half of the time
            first_ours = i % 2 == 0
            if first_ours:
                ours.append(evaluate(spec, task, budget)["images_per_s"])
            theirs.append(hand_loop(spec, task, budget, args.device))
            if not first_ours:
                ours.append(evaluate(spec, task, budget)["images_per_s"])
        a, b = statistics.median(ours), statistics.median(theirs)
        rows.append(f"| {name} | {size[0]}x{size[1]}, {batch} | {a:.1f} | {b:.1f} | {a / b:.3f} |")
        print(rows[-1], flush=True)
    body = (
        f"## Training throughput ({args.device})\n\n"
        f"`python bench/train_throughput.py --steps {args.steps} --rounds {args.rounds} --device {args.device}` on {machine()}.\n"
        "Task `shapes`, same model/data/batch/loss/AdamW; evaluate() with its cosine schedule and finiteness\n"
        "check (clipping off, as in the plain loop); median of rounds that alternate which goes first.\n\n" + "\n".join(rows)
    )
    if not args.no_write:
        write_section(f"train-throughput-{args.device}", body)


if __name__ == "__main__":
    main()
