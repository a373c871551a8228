"""A tabular benchmark of the skip-design space on `shapes` (like NAS-Bench-201).

    python bench/tabular.py [--workers 2] [--seeds 0 1 2] [--out bench/data/tabular-shapes.json.gz]
    python bench/tabular.py --check        # what the table says: designs, seeds, rungs

Every architecture of search_spaces/tiny.yaml (68: depth 2-3, width 8-16, NAF and CMRF
blocks, all skip designs) is trained at the quickstart's budget with each seed, and every
metric is recorded at every rung step; costs are the cost model's at 3x256x256. The `tabular`
backend then answers a study's trials from the table in milliseconds, so samplers and
fidelity schemes can be compared (bench/search_quality.py). Resumable: finished runs are
appended to a partial file and skipped on a re-run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

TASK = {"name": "shapes", "train_samples": 400, "val_samples": 100}
BUDGET = {"steps": 400, "batch": 8, "size": [64, 64], "lr": 0.004, "device": "cpu"}  # the quickstart's
RUNGS = [50, 100, 150, 200, 250, 300, 350]
SPACE = ROOT / "search_spaces" / "tiny.yaml"
REFERENCE = (3, 256, 256)


def specs() -> list:
    from skipsearch.search.space import SearchSpace
    from skipsearch.search.tabular import enumerate_space
    from skipsearch.tasks import make_task

    task = make_task(TASK["name"], **{k: v for k, v in TASK.items() if k != "name"})
    return enumerate_space(SearchSpace.load(SPACE), task)


def train(spec_json: str, seed: int) -> dict:
    """One run: every metric at every rung and at the end."""
    import torch

    from skipsearch import ArchSpec, Budget, evaluate
    from skipsearch.tasks import make_task

    torch.set_num_threads(1)
    task = make_task(TASK["name"], **{k: v for k, v in TASK.items() if k != "name"})
    at: dict[str, dict] = {}

    def on_rung(step: int, metrics: dict) -> bool:
        at[str(step)] = {k: round(float(metrics[k]), 5) for k in task.metric_names}
        return True

    budget = Budget(**{**BUDGET, "size": tuple(BUDGET["size"]), "seed": seed})
    r = evaluate(ArchSpec.from_json(spec_json), task, budget, rungs=RUNGS, on_rung=on_rung)
    at[str(budget.steps)] = {k: round(float(r[k]), 5) for k in task.metric_names}
    return {"curve": [[s, round(v, 5)] for s, v in r["curve"]], "metrics_at": at, "train_time_s": round(r["train_time_s"], 3)}


def costs(spec) -> dict:
    from skipsearch.costs.profile import profile
    from skipsearch.objectives import OBJECTIVES

    p = profile(spec, REFERENCE)
    return {n: o.compute(p) for n, o in OBJECTIVES.items() if o.when == "spec" and not o.at_budget}


def build(out: Path, seeds: list[int], workers: int) -> None:
    from _report import machine
    from tqdm import tqdm

    from skipsearch.tasks import make_task

    partial = out.with_suffix(".partial.jsonl")
    done = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            row = json.loads(line)
            done[(row["arch_id"], row["seed"])] = row["run"]
    archs = specs()
    todo = [(s, seed) for s in archs for seed in seeds if (s.arch_id, seed) not in done]
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool, partial.open("a") as log:
        futures = {pool.submit(train, s.to_json(indent=None), seed): (s.arch_id, seed) for s, seed in todo}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="tabular", file=sys.stderr):
            arch_id, seed = futures[fut]
            done[(arch_id, seed)] = run = fut.result()
            log.write(json.dumps({"arch_id": arch_id, "seed": seed, "run": run}) + "\n")
            log.flush()
    task = make_task(TASK["name"], **{k: v for k, v in TASK.items() if k != "name"})
    entries = [
        {
            "arch_id": s.arch_id,
            "spec": s.to_json(indent=None),
            "summary": s.summary(),
            "costs": costs(s),
            "runs": {str(seed): done[(s.arch_id, seed)] for seed in seeds},
        }
        for s in archs
    ]
    budget = {k: v for k, v in _budget().to_dict().items() if k != "seed"}
    data = {
        "format": 1,
        "task": task.describe(),
        "primary": task.primary,
        "budget": budget,
        "reference_input": list(REFERENCE),
        "rung_steps": [*RUNGS, BUDGET["steps"]],
        "seeds": seeds,
        "machine": machine(),
        "build_s": round(time.perf_counter() - start, 1),
        "entries": entries,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"{out}: {len(entries)} architectures x {len(seeds)} seeds, {out.stat().st_size:,} bytes", file=sys.stderr)


def _budget():
    from skipsearch import Budget

    return Budget(**{**BUDGET, "size": tuple(BUDGET["size"])})


def check(path: Path, write: bool = False) -> None:
    """Per design: final dice (mean, spread over seeds) and skip memory; rank agreement
    between seeds, and between each rung and the final step."""
    import numpy as np
    from scipy.stats import spearmanr

    from skipsearch.search.tabular import Table

    t = Table.load(path)
    final = str(t.steps[-1])
    by_design: dict[str, list] = {}
    for e in t.entries.values():
        design = json.loads(e["spec"])["skip"]["type"]
        dice = [r["metrics_at"][final]["dice"] for r in e["runs"].values()]
        by_design.setdefault(design, []).append((np.mean(dice), np.ptp(dice), e["costs"]["skip_memory_me1"]))
    b = t.data["budget"]
    lines = [
        f"{path.name}: {len(t.entries)} architectures x {len(t.seeds)} seeds, {b['steps']} steps, batch {b['batch']}, "
        f"{b['size'][0]}x{b['size'][1]}, lr {b['lr']}; built in {t.data.get('build_s', 0) / 60:.0f} min "
        f"on {t.data.get('machine')}.",
        "",
        "| skip design | architectures | mean final dice | mean seed spread (max - min) | skip memory (M_E1 at 256x256) |",
        "|---|---:|---:|---:|---:|",
    ]
    for design, rows in sorted(by_design.items()):
        a = np.array(rows)
        lines.append(
            f"| {design} | {len(a)} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | {a[:, 2].min():.3g}-{a[:, 2].max():.3g} |"
        )
    ids = list(t.entries)
    per_seed = np.array([[t.metrics_at(i, s, t.steps[-1])["dice"] for i in ids] for s in t.seeds])
    pairs = [(a, b) for a in range(len(t.seeds)) for b in range(a + 1, len(t.seeds))]
    rho = [spearmanr(per_seed[a], per_seed[b])[0] for a, b in pairs]
    lines += ["", f"Spearman rank correlation of final dice between seeds: {', '.join(f'{r:.2f}' for r in rho)}."]
    rungs = []
    for step in t.steps[:-1]:
        rs = [spearmanr([t.metrics_at(i, s, step)["dice"] for i in ids], per_seed[k])[0] for k, s in enumerate(t.seeds)]
        rungs.append(f"{step}: {np.mean(rs):.2f}")
    lines.append(f"Spearman of dice at a step with the final dice of the same seed: {', '.join(rungs)}.")
    body = "\n".join(lines)
    print(body)
    if write:
        from _report import write_section

        write_section("tabular", f"## Tabular benchmark\n\n`python bench/tabular.py --check --write`\n\n{body}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "data" / "tabular-shapes.json.gz")
    ap.add_argument("--check", action="store_true", help="summarise an existing table")
    ap.add_argument("--write", action="store_true", help="with --check: write the summary into BENCHMARKS.md")
    args = ap.parse_args()
    if args.check:
        check(args.out, args.write)
    else:
        build(args.out, args.seeds, args.workers)


if __name__ == "__main__":
    main()
