"""Search quality on the tabular benchmark: which sampler, fidelity scheme and seed racing
finds the true front with the fewest training steps, and how far below the best a pick is.

    python bench/search_quality.py [--reps 20] [--trials 50] [--workers 2] [--json out.json]

Every configuration (sampler random / nsga2 / tpe / gp, each without and with Pareto-aware
successive halving; other rung schedules; seed racing) runs `--reps` times with other seeds
on the `tabular` backend (studies/tabular.yaml, schedule: sync): each trial's dice is one
seed's figure from the table, as a real single-seed run would give. After every trial the
search's reported front (its non-dominated complete trials, by the values it saw) is scored
by the hypervolume of the TRUE values of those architectures: the mean dice over all the
table's seeds at the full budget, the exact skip memory, on one reference point shared by
every run. The x axis is cumulative training steps (a trial stopped at a rung costs its
steps; a duplicate or an infeasible point costs none; a racing run costs a full run). The
front a search ends with is the one skipsearch reports (on the means over its seeds where it
raced).

Printed per configuration: the median true hypervolume at the end (and its interquartile
range over repetitions), the share of the true front recovered, the share of reported
members not on the true front, the training steps each needs to reach random search's final
median hypervolume, and the figure a user acts on: the regret of each reported member (the
best true dice among architectures of at most its skip memory, minus its own true dice),
as the median and 90th percentile over all reported members of all runs, and the share of
runs that report a member more than 0.02 dice below the best at its memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

STUDY = ROOT / "studies" / "tabular.yaml"
SAMPLERS = ("random", "nsga2", "tpe", "gp")
ASHA = {"min_steps": 100, "eta": 2}  # rungs at 100 and 200 (the quickstart's before this table had five seeds)
LATE = {"min_steps": 200, "eta": 2}  # one rung at 200, where the rung ranks as the end does (Spearman 0.81)
EAGER = {"min_steps": 50, "eta": 3}  # a more aggressive schedule
RACING = {"seeds": 3, "confidence": 0.9, "runs": 12}  # seed racing: at most 3 seeds, 12 extra runs


def configurations(samplers) -> list[dict]:
    out = [{"sampler": s, "asha": a, "repeats": None} for s in samplers for a in (None, ASHA)]
    out += [{"sampler": s, "asha": EAGER, "repeats": None} for s in ("random", "nsga2") if s in samplers]
    out += [{"sampler": s, "asha": LATE, "repeats": None} for s in ("tpe",) if s in samplers]
    return out + [{"sampler": s, "asha": a, "repeats": RACING} for s in ("tpe", "nsga2") if s in samplers for a in (ASHA, LATE)]


def label(c: dict) -> str:
    text = c["sampler"]
    if c["asha"]:
        text += f" + asha({c['asha']['min_steps']}, eta {c['asha']['eta']})"
    if c["repeats"]:
        r = c["repeats"]
        text += f" + racing({r['seeds']} seeds, {r['confidence']:.0%}, {r['runs']} runs)"
    return text


def one_run(args: tuple[dict, int, int]) -> dict:
    """One search; its reported front after every trial, as arch ids, with the steps spent;
    then the front it reports at the end (on the means over seeds where it raced)."""
    import optuna

    from skipsearch.search.config import load_study
    from skipsearch.search.fidelity import Fidelity
    from skipsearch.search.repeats import Repeats, assemble
    from skipsearch.search.run import run_study

    conf, rep, trials = args
    cfg = load_study(STUDY)
    cfg.name, cfg.storage, cfg.seed, cfg.n_trials = f"q{rep}", "memory://", rep, trials
    cfg.sampler = {"type": conf["sampler"], **({"population": 8} if conf["sampler"] == "nsga2" else {})}
    cfg.fidelity = Fidelity(**conf["asha"]) if conf["asha"] else None
    r = conf["repeats"]
    cfg.repeats = Repeats(r["seeds"], None, r["confidence"], r["runs"]) if r else None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    outcome = run_study(cfg, backend="tabular", report=lambda line: None)
    study, directions = outcome.study, [o.direction for o in cfg.objectives]
    budget = cfg.budget.steps
    steps, seen, history = 0, [], []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        a = t.user_attrs
        if a.get("duplicate_of") is None and "infeasible" not in a and "arch_id" in a and t.state.name != "FAIL":
            steps += int(a.get("steps", budget))
        if t.state.name == "COMPLETE" and a.get("duplicate_of") is None:
            seen.append((a["arch_id"], [float(a[o.name]) for o in cfg.objectives]))  # the value the search saw
        history.append([steps, _front_ids(seen, directions)])
    runs = sum(len(e["values"]) + len(e.get("failures", [])) for e in assemble(study.user_attrs).values())
    reported = [m.trial.user_attrs["arch_id"] for m in outcome.front]
    if runs:  # the racing runs come after the trials: their cost, then the front on the means
        history.append([steps + budget * runs, reported])
    return {"conf": label(conf), "rep": rep, "history": history, "reported": reported}


def _front_ids(seen: list, directions) -> list[str]:
    from skipsearch.pareto import non_dominated

    if not seen:
        return []
    mask = non_dominated(np.array([v for _, v in seen]), directions)
    return [a for (a, _), on in zip(seen, mask, strict=True) if on]


def truth(table) -> tuple[dict[str, list[float]], list[str], np.ndarray]:
    """True (dice, skip memory) per arch id, the true front, and the shared reference point."""
    from skipsearch.pareto import non_dominated

    values = {a: [table.true_values(a, "dice"), float(e["costs"]["skip_memory_bytes"])] for a, e in table.entries.items()}
    ids = list(values)
    v = np.array([values[a] for a in ids])
    front = [a for a, on in zip(ids, non_dominated(v, DIRECTIONS), strict=True) if on]
    reference = np.array([0.0, v[:, 1].max() * 1.1])
    return values, front, reference


DIRECTIONS = ("maximize", "minimize")


def true_hv(ids: list[str], values: dict, reference: np.ndarray) -> float:
    from skipsearch.pareto import hypervolume

    if not ids:
        return 0.0
    return hypervolume(np.array([values[a] for a in ids]), DIRECTIONS, reference)


def at_steps(history: list, budget: float, values: dict, reference: np.ndarray) -> float:
    """True hypervolume of the front reported once `budget` steps were spent."""
    ids: list[str] = []
    for steps, front in history:
        if steps > budget:
            break
        ids = front
    return true_hv(ids, values, reference)


def median_curve(runs: list[dict], grid: np.ndarray, values: dict, reference: np.ndarray) -> np.ndarray:
    """The median over runs of the true hypervolume reported by each step budget of `grid`."""
    return np.median([[at_steps(r["history"], g, values, reference) for g in grid] for r in runs], axis=0)


def regrets(ids: list[str], values: dict) -> list[float]:
    """For each reported architecture: the best true mean metric among architectures whose
    cost is at most its cost, minus its own true mean (0: nothing at its cost is better)."""
    metric = np.array([v[0] for v in values.values()])
    cost = np.array([v[1] for v in values.values()])
    return [float(metric[cost <= values[a][1]].max() - values[a][0]) for a in ids]


def summarise(runs: list[dict], table) -> list[dict]:
    values, front, reference = truth(table)
    best = true_hv(front, values, reference)
    by_conf: dict[str, list[dict]] = {}
    for r in runs:
        by_conf.setdefault(r["conf"], []).append(r)
    grid = np.linspace(0, max(r["history"][-1][0] for r in runs), 201)
    curves = {conf: median_curve(rs, grid, values, reference) for conf, rs in by_conf.items()}
    random_final = curves["random"][-1]
    random_steps = float(np.median([r["history"][-1][0] for r in by_conf["random"]]))
    rows = []
    for conf, rs in by_conf.items():
        finals = [true_hv(r["history"][-1][1], values, reference) / best for r in rs]
        last = [set(r["history"][-1][1]) for r in rs]
        per_run = [regrets(r["history"][-1][1], values) for r in rs]
        pooled = [g for run in per_run for g in run]
        reached = np.flatnonzero(curves[conf] >= random_final - 1e-12)
        to_random = float(grid[reached[0]]) if len(reached) else float("inf")
        rows.append(
            {
                "configuration": conf,
                "runs": len(rs),
                "final_hv_share": float(np.median(finals)),
                "final_hv_share_iqr": [float(np.percentile(finals, 25)), float(np.percentile(finals, 75))],
                "total_steps": float(np.median([r["history"][-1][0] for r in rs])),
                "true_front_recovered": float(np.mean([len(s & set(front)) / len(front) for s in last])),
                "reported_not_on_true_front": float(np.mean([len(s - set(front)) / max(1, len(s)) for s in last])),
                "runs_with_a_wrong_member": float(np.mean([bool(s - set(front)) for s in last])),
                "regret_median": float(np.median(pooled)) if pooled else float("nan"),
                "regret_p90": float(np.percentile(pooled, 90)) if pooled else float("nan"),
                "runs_with_regret_over_002": float(np.mean([any(g > 0.02 for g in run) for run in per_run])),
                "steps_to_random_final": to_random,
                "steps_to_random_final_vs_random": to_random / random_steps,
                "curve": {"steps": grid.tolist(), "median_hv_share": (curves[conf] / best).tolist()},
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    ap.add_argument("--json", type=Path, help="also write the runs and the summary here")
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args()

    from _report import machine, write_section
    from tqdm import tqdm

    from skipsearch.search.config import load_study
    from skipsearch.search.tabular import Table

    table = Table.load(load_study(STUDY).table)
    jobs = [(c, rep, args.trials) for c in configurations(args.samplers) for rep in range(args.reps)]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(tqdm(pool.map(one_run, jobs), total=len(jobs), desc="searches", file=sys.stderr))
    rows = summarise(runs, table)
    front = truth(table)[1]
    lines = [
        f"{table.path.name}: {len(table.entries)} architectures, true front of {len(front)} ({len(table.seeds)}-seed means at "
        f"{table.steps[-1]} steps); {args.reps} repetitions x {args.trials} trials per configuration; "
        f"{machine()}.",
        "",
        "| configuration | final true HV, share of the true front's (median, IQR) | training steps (median) "
        "| true front recovered | reported members off the true front | runs with such a member "
        "| steps to reach random's final HV (x random's steps) | regret of reported members: median, 90th percentile "
        "| runs with a member of regret > 0.02 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lo, hi = r["final_hv_share_iqr"]
        lines.append(
            f"| {r['configuration']} | {r['final_hv_share']:.1%} ({lo:.1%}-{hi:.1%}) | {r['total_steps']:,.0f} "
            f"| {r['true_front_recovered']:.0%} | {r['reported_not_on_true_front']:.0%} | {r['runs_with_a_wrong_member']:.0%} "
            f"| {r['steps_to_random_final']:,.0f} ({r['steps_to_random_final_vs_random']:.2f}) "
            f"| {r['regret_median']:.4f}, {r['regret_p90']:.4f} | {r['runs_with_regret_over_002']:.0%} |"
        )
    body = "\n".join(lines)
    print(body)
    if args.write:
        cmd = "python bench/search_quality.py" + (
            "" if args.samplers == list(SAMPLERS) else f" --samplers {' '.join(args.samplers)}"
        )
        write_section("search-quality", f"## Search quality\n\n`{cmd} --write`\n\n{body}\n")
    if args.json:
        args.json.write_text(json.dumps({"summary": rows, "runs": runs}))


if __name__ == "__main__":
    main()
