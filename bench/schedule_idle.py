"""What a repeatable schedule costs: idle workers, simulated on the tabular benchmark.

    python bench/schedule_idle.py [--trials 50] [--timings 5] [--write]

The tabular study (studies/tabular.yaml: tpe, Pareto-aware successive halving at 100 and
200 steps, seed racing with 12 runs) is run with `concurrency` simulated workers (1, 2, 4,
8), each trial taking the seconds per step the table recorded for it times a factor drawn
from a timing seed (log-normal, sigma 0.5: trials of one architecture vary as much as
machines do). For each schedule (sync: trial-order decisions; async: decisions as trials
arrive) and each timing seed it records the simulated makespan and the worker-seconds spent
training, waiting at a rung for a verdict, and without a trial (the schedule holding the next
one back, a racing round waiting for its last run, the study's tail). Printed: the idle
share (mean and spread over timing seeds) and sync's makespan against async's in the same
timing; and whether every timing seed gave sync the same study (it must).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))

STUDY = ROOT / "studies" / "tabular.yaml"


def one(schedule: str, concurrency: int, timing: int, trials: int):
    import optuna

    from skipsearch.search.config import load_study
    from skipsearch.search.repeats import Repeats
    from skipsearch.search.run import _table, make_runner
    from skipsearch.search.tabular import run_tabular

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cfg = load_study(STUDY)
    cfg.n_trials, cfg.concurrency, cfg.schedule, cfg.name = trials, concurrency, schedule, f"idle-{schedule}"
    cfg.repeats = Repeats(3, None, 0.9, 12)
    runner = make_runner(cfg)
    try:
        idle = run_tabular(runner, lambda line: None, _table(cfg), timing=timing)
        fingerprint = None
        if schedule == "sync":
            from schedule_helpers import canonical

            fingerprint = canonical(runner.study)
        return idle, fingerprint
    finally:
        runner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--timings", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args()
    from _report import machine, write_section

    lines = [
        f"studies/tabular.yaml, {args.trials} trials, tpe + asha(100, eta 2) + racing (3 seeds, 90 %, 12 runs), "
        f"{args.timings} timing seeds per row (simulated; the sums are exact), run on {machine()}. "
        "The makespan also counts what each schedule trains: a sync study asks a repeated architecture again, "
        "so it trains more distinct ones (at 1 worker, with no idle time at all, 1.1x async's).",
        "",
        "| workers | schedule | idle share of worker time (mean, min-max) | waiting at a rung | without a trial "
        "| makespan vs async (mean) | same study for every timing |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for concurrency in (1, 2, 4, 8):
        spans = {}
        for schedule in ("async", "sync"):
            runs = [one(schedule, concurrency, t, args.trials) for t in range(args.timings)]
            idles = [r[0] for r in runs]
            spans[schedule] = np.array([i.makespan for i in idles])
            share = np.array([i.share for i in idles])
            total = np.array([i.busy + i.at_rung + i.no_trial for i in idles])
            rung = np.mean([i.at_rung for i in idles] / total)
            none = np.mean([i.no_trial for i in idles] / total)
            ratio = np.mean(spans[schedule] / spans["async"])
            same = "yes" if all(r[1] == runs[0][1] for r in runs) else "NO"
            lines.append(
                f"| {concurrency} | {schedule} | {share.mean():.1%} ({share.min():.1%}-{share.max():.1%}) | {rung:.1%} "
                f"| {none:.1%} | {ratio:.2f} | {same if schedule == 'sync' else '-'} |"
            )
            print(lines[-1], file=sys.stderr)
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(
            "schedule-idle",
            f"## Idle cost of a repeatable schedule\n\n`python bench/schedule_idle.py --write`\n\n{body}\n",
        )


if __name__ == "__main__":
    main()
