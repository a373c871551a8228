"""How much of a study's front survives fresh seeds: retrain its members and recompute it.

    python bench/front_retrain.py studies/quickstart [--seeds 2] [--workers 2] [--write]

For a finished study with repeats, two fronts are checked side by side in one run:
- the confirmed front: the front of the seed means, as the study reports it;
- the single-seed front: the front the same trials give on their first seed alone (what a
  study without repeats would report).
Every member of either is trained again with `--seeds` new seeds (never used by the study),
at the study's budget. A member stays if it is still on the front once its values are the
means of the new seeds (the other trained architectures keep the study's values). Printed:
each member's figures, the share that stays, and the rank correlation of the members'
dice between the study and the fresh seeds.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

FRESH = 9000  # fresh seeds: budget.seed + 9000 + k, far from the study's (base + 1000 * index)


def train(args: tuple[str, str, dict, dict, int]) -> float:
    import torch

    from skipsearch import ArchSpec, Budget, evaluate
    from skipsearch.tasks import make_task

    spec_json, task_name, task_options, budget, seed = args
    torch.set_num_threads(1)
    budget = {**budget, "seed": seed, "size": tuple(budget["size"])}
    if budget.get("betas"):
        budget["betas"] = tuple(budget["betas"])
    task = make_task(task_name, **task_options)
    return float(evaluate(ArchSpec.from_json(spec_json), task, Budget(**budget))[task.primary])


def main() -> None:
    from scipy.stats import spearmanr

    from skipsearch.pareto import non_dominated
    from skipsearch.results import load_results, load_stored_study

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study_dir", type=Path)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args()

    r = load_results(args.study_dir)
    cfg = r.config
    metric, cost = r.objectives[0], r.objectives[1]
    directions = r.directions[:2]
    f = r.frame
    original = f["duplicate_of"].isna() if "duplicate_of" in f else True  # the column exists once a duplicate does
    trained = f[(f["state"] == "COMPLETE") & f["feasible"].astype(bool) & original].copy()
    first = trained["seeds"].map(lambda s: s[0] if isinstance(s, list) else np.nan).fillna(trained[metric])
    trained["first"] = first
    means = trained[[metric, cost]].to_numpy(float)
    singles = np.column_stack([trained["first"].to_numpy(float), trained[cost].to_numpy(float)])
    confirmed = set(trained["number"][non_dominated(means, directions)])
    single = set(trained["number"][non_dominated(singles, directions)])
    members = sorted(confirmed | single)
    base = int(cfg["budget"].get("seed", 0)) + FRESH
    specs = {t.number: t.user_attrs["spec"] for t in load_stored_study(args.study_dir).trials}
    jobs = [
        (specs[n], cfg["task"], cfg.get("task_options", {}), cfg["budget"], base + k) for n in members for k in range(args.seeds)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        scores = list(pool.map(train, jobs))
    fresh = {n: scores[i * args.seeds : (i + 1) * args.seeds] for i, n in enumerate(members)}

    def stays(front: set[int], column: str) -> dict[int, bool]:
        out = {}
        for n in front:
            values = trained[[column, cost]].to_numpy(float).copy()
            row = int(np.flatnonzero(trained["number"].to_numpy() == n)[0])
            values[row, 0] = np.mean(fresh[n])
            out[n] = bool(non_dominated(values, directions)[row])
        return out

    kept = {"confirmed (seed means)": stays(confirmed, metric), "single seed": stays(single, "first")}
    lines = [
        f"Study {r.name!r} ({len(trained)} trained architectures); fresh seeds {base}..{base + args.seeds - 1}, "
        f"budget {cfg['budget']['steps']} steps at {cfg['budget']['size']}.",
        "",
        f"| trial | architecture | {cost} | {metric}: study (seeds) | first seed | fresh seeds | on the confirmed front "
        "| on the single-seed front |",
        "|---:|---|---:|---|---:|---|---|---|",
    ]

    def mark(n: int, front: set[int], key: str) -> str:
        return ("stays" if kept[key][n] else "drops") if n in front else "-"

    for n in members:
        row = trained.set_index("number").loc[n]
        seeds = row["seeds"] if isinstance(row["seeds"], list) else [row[metric]]
        study = f"{row[metric]:.3f} ({', '.join(f'{s:.3f}' for s in seeds)})"
        lines.append(
            f"| {n} | {row['summary']} | {row[cost] / 2**20:.3g} MiB | {study} | {row['first']:.3f} "
            f"| {', '.join(f'{s:.3f}' for s in fresh[n])} | {mark(n, confirmed, 'confirmed (seed means)')} "
            f"| {mark(n, single, 'single seed')} |"
        )
    lines.append("")
    for key, result in kept.items():
        lines.append(f"- {key} front: {sum(result.values())} of {len(result)} stay on the front with fresh seeds")
    study_dice = [trained.set_index("number").loc[n, metric] for n in members]
    rho = spearmanr(study_dice, [np.mean(fresh[n]) for n in members])[0] if len(members) > 2 else float("nan")
    spread = np.median([np.ptp(fresh[n] + [trained.set_index("number").loc[n, "first"]]) for n in members])
    lines.append(f"- Spearman rank correlation of the members' {metric}, study against fresh seeds: {rho:.2f}")
    lines.append(f"- median spread (max - min) of a member's {metric} over its first and fresh seeds: {spread:.3f}")
    body = "\n".join(lines)
    print(body)
    if args.write:
        from _report import machine, write_section

        write_section("front-retrain", f"## Front stability under fresh seeds (quickstart)\n\n{machine()}.\n\n{body}\n")


if __name__ == "__main__":
    main()
