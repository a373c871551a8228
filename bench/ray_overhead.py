"""Per-trial overhead of the Ray backend against a plain Optuna loop calling evaluate().

    python bench/ray_overhead.py [--trials 8] [--steps 150] [--no-write]

The same study (same sampler seed, so the same architectures) runs three ways, one trial
at a time: a plain Optuna ask/tell loop calling evaluate() (the floor), `--backend local`
and the Ray backend (local Ray, started inside the run). Overhead per trial = (wall time
of the run - time spent inside evaluate()) / trials; ray.init/shutdown are reported
apart. The aim is under 3 % of a 30-second trial.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import optuna  # noqa: E402
from _report import machine, write_section  # noqa: E402

from skipsearch.search.config import load_study  # noqa: E402
from skipsearch.search.local_backend import run_local  # noqa: E402
from skipsearch.search.study import Runner  # noqa: E402
from skipsearch.train import evaluate  # noqa: E402

STUDY = """name: {name}
task: {{name: shapes, train_samples: 200, val_samples: 50}}
space: {space}
sampler: random
n_trials: {trials}
budget: {{steps: {steps}, batch: 8, size: [48, 48]}}
reference_input: [3, 64, 64]
"""


def write(tmp: Path, name: str, trials: int, steps: int) -> Path:
    space = Path(__file__).resolve().parent.parent / "search_spaces" / "tiny.yaml"
    path = tmp / f"{name}.yaml"
    path.write_text(STUDY.format(name=name, space=space, trials=trials, steps=steps))
    return path


def inside(study_path: Path) -> float:
    cfg = load_study(study_path)
    trials = optuna.load_study(study_name=cfg.name, storage=cfg.storage).trials
    return sum(t.user_attrs.get("wall_s", 0.0) for t in trials)


def plain_loop(path: Path) -> tuple[float, float]:
    """The floor: ask, build the spec, evaluate, tell; nothing else."""
    cfg = load_study(path)
    task = cfg.make_task()
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=cfg.seed))
    start, spent = time.perf_counter(), 0.0
    for _ in range(cfg.n_trials):
        trial = study.ask()
        try:
            spec = cfg.space.to_spec(cfg.space.suggest(trial), task)
        except Exception:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        t = time.perf_counter()
        r = evaluate(spec, task, cfg.budget)
        spent += time.perf_counter() - t
        study.tell(trial, [r["dice"], 0.0])
    return time.perf_counter() - start, spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    tmp = Path(tempfile.mkdtemp())
    rows = ["| way | wall s | inside evaluate() s | overhead per trial s | % of a 30 s trial |", "|---|---|---|---|---|"]

    def row(name: str, wall: float, spent: float) -> None:
        per = (wall - spent) / args.trials
        rows.append(f"| {name} | {wall:.1f} | {spent:.1f} | {per:.2f} | {100 * per / 30:.1f} % |")
        print(rows[-1], flush=True)

    wall, spent = plain_loop(write(tmp, "plain", args.trials, args.steps))
    row("plain Optuna loop + evaluate()", wall, spent)

    path = write(tmp, "local", args.trials, args.steps)
    t = time.perf_counter()
    run_local(Runner(load_study(path)), lambda _: None)
    row("skipsearch --backend local", time.perf_counter() - t, inside(path))

    import ray

    from skipsearch.search.ray_backend import run_ray

    path = write(tmp, "ray", args.trials, args.steps)
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    t1 = time.perf_counter()
    run_ray(Runner(load_study(path)), lambda _: None)
    t2 = time.perf_counter()
    ray.shutdown()
    t3 = time.perf_counter()
    row("skipsearch --backend ray (Tune, reuse_actors)", t2 - t1, inside(path))
    note = f"ray.init {t1 - t0:.1f} s and ray.shutdown {t3 - t2:.1f} s once per run, not included above."
    print(note)
    body = (
        "## Search backend overhead\n\n"
        f"`python bench/ray_overhead.py --trials {args.trials} --steps {args.steps}` on {machine()}.\n"
        f"{args.trials} trials of the tiny space, one at a time, `shapes` at 48x48, {args.steps} steps. Overhead per trial =\n"
        "(wall time - time inside evaluate()) / trials; it includes the driver's cheap-cost profiling and\n"
        "study bookkeeping (and, for Ray, scheduling and the result round trip).\n\n" + "\n".join(rows) + "\n\n" + note
    )
    if not args.no_write:
        write_section("ray-overhead", body)


if __name__ == "__main__":
    main()
