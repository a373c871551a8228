"""Search quality on the tabular benchmark: which sampler and fidelity scheme finds the
true front with the fewest training steps.

    python bench/search_quality.py [--reps 20] [--trials 50] [--workers 2] [--json out.json]

Every configuration (sampler random / nsga2 / tpe / gp, each without and with Pareto-aware
ASHA; a more aggressive ASHA schedule; ASHA with repeats of the front) runs `--reps` times with other seeds on the `tabular`
backend (studies/tabular.yaml): each trial's dice is one seed's figure from the table, as a
real single-seed run would give. After every trial the search's reported front (its
non-dominated complete trials, by the values it saw) is scored by the hypervolume of the
TRUE values of those architectures: the three-seed mean dice at the full budget, the exact
skip memory, on one reference point shared by every run. The x axis is cumulative training
steps (a trial stopped at a rung costs its steps; a duplicate or an infeasible point costs
none; a repeat costs a full run).

Printed per configuration: the median true hypervolume at a few step budgets, the final one
(median and interquartile range over repetitions), the share of the true front recovered,
the share of reported front members that are not on the true front, and the training steps
each needs to reach random search's final median hypervolume.
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
ASHA = {"min_steps": 100, "eta": 2}  # the quickstart's
EAGER = {"min_steps": 50, "eta": 3}  # a more aggressive schedule
REPEATS = {"seeds": 2, "top": 4}  # two of the table's three seeds (three would give the true values by construction)


def configurations(samplers) -> list[dict]:
    out = [{"sampler": s, "asha": a, "repeats": None} for s in samplers for a in (None, ASHA)]
    out += [{"sampler": s, "asha": EAGER, "repeats": None} for s in ("random", "nsga2") if s in samplers]
    return out + [{"sampler": s, "asha": ASHA, "repeats": REPEATS} for s in ("random", "nsga2") if s in samplers]


def label(c: dict) -> str:
    text = c["sampler"]
    if c["asha"]:
        text += f" + asha({c['asha']['min_steps']}, eta {c['asha']['eta']})"
    return text + (f" + repeats({c['repeats']['seeds']} seeds, top {c['repeats']['top']})" if c["repeats"] else "")


def one_run(args: tuple[dict, int, int]) -> dict:
    """One search; its reported front after every trial, as arch ids, with the steps spent."""
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
    cfg.repeats = Repeats(**conf["repeats"]) if conf["repeats"] else None
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
            seen.append((a["arch_id"], list(t.values)))
        history.append([steps, _front_ids(seen, directions)])
    repeats = assemble(study.user_attrs)
    if repeats:  # the repeat runs come after the trials: their cost, then the front on the means
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        steps += budget * sum(len(e["values"]) for e in repeats.values())
        means = []
        for arch_id, values in seen:
            number = next(
                n for n, t in by_number.items() if t.user_attrs.get("arch_id") == arch_id and t.state.name == "COMPLETE"
            )
            rows = [values] + repeats.get(str(number), {}).get("values", [])
            means.append((arch_id, list(np.mean(rows, axis=0))))
        history.append([steps, _front_ids(means, directions)])
    return {"conf": label(conf), "rep": rep, "history": history}


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
        f"{table.path.name}: {len(table.entries)} architectures, true front of {len(front)} (three-seed means at "
        f"{table.steps[-1]} steps); {args.reps} repetitions x {args.trials} trials per configuration; "
        f"{machine()}.",
        "",
        "| configuration | final true HV, share of the true front's (median, IQR) | training steps (median) "
        "| true front recovered | reported members off the true front | runs with such a member "
        "| steps to reach random's final HV (x random's steps) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lo, hi = r["final_hv_share_iqr"]
        lines.append(
            f"| {r['configuration']} | {r['final_hv_share']:.1%} ({lo:.1%}-{hi:.1%}) | {r['total_steps']:,.0f} "
            f"| {r['true_front_recovered']:.0%} | {r['reported_not_on_true_front']:.0%} | {r['runs_with_a_wrong_member']:.0%} "
            f"| {r['steps_to_random_final']:,.0f} ({r['steps_to_random_final_vs_random']:.2f}) |"
        )
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("search-quality", f"## Search quality\n\n`python bench/search_quality.py --write`\n\n{body}\n")
    if args.json:
        args.json.write_text(json.dumps({"summary": rows, "runs": runs}))


if __name__ == "__main__":
    main()
