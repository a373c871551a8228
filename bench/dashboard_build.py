"""Dashboard build time and the live server's polling cost for a large study (default
5,000 trials).

    python bench/dashboard_build.py [--trials 5000] [--no-write]

Writes a synthetic study with the user attributes a real run stores (spec JSON, costs,
timeline, metrics; some infeasible and failed trials), then times, side by side, loading
it (Optuna + the results table), the parameter importance, and building the page, median
of 3. Then serves it (serve.py) on localhost and times what a polling page costs: a poll
while nothing changed (304, the usual case), a poll after a change (the whole data,
gzip), and the server's look at the study file; medians over many requests.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import optuna  # noqa: E402
from _report import machine, write_section  # noqa: E402
from profile_speed import random_spec  # noqa: E402

from skipsearch.dashboard import build_page  # noqa: E402
from skipsearch.importance import importances  # noqa: E402
from skipsearch.results import load_results  # noqa: E402


def synthetic(folder: Path, n: int) -> None:
    rng = random.Random(0)
    storage = f"sqlite:///{folder / 'study.db'}"
    study = optuna.create_study(study_name="big", storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr(
        "config",
        {"task": "shapes", "space": "skip-designs", "objectives": [["dice", "maximize"], ["skip_memory_bytes", "minimize"]]},
    )
    specs = [random_spec(rng) for _ in range(200)]
    dist = {"depth": optuna.distributions.IntDistribution(3, 5)}
    trials = []
    for i in range(n):
        spec = specs[i % len(specs)]
        skip = 2**20 * rng.uniform(0.05, 8)
        attrs = {
            "spec": spec.to_json(indent=None),
            "arch_id": spec.arch_id,
            "summary": spec.summary(),
            "skip": spec.skip.type,
            "block": spec.block.type,
            "skip_memory_bytes": skip,
            "params": rng.randint(10**4, 10**6),
            "macs": rng.randint(10**7, 10**9),
            "m_e1_bytes": 2**20,
            "skip_timeline": [int(skip * f) for f in (0.5, 0.8, 1, 1, 0.8, 0.5, 0)],
            "skip_levels": {"L1": int(skip)},
        }
        state = optuna.trial.TrialState.COMPLETE
        values = [rng.uniform(0.3, 0.9) - 0.02 * skip / 2**20, skip]
        if i % 17 == 0:
            state, values, attrs["infeasible"] = optuna.trial.TrialState.PRUNED, None, "skip_memory_bytes too large"
        elif i % 23 == 0:
            state, values, attrs["failure"] = optuna.trial.TrialState.FAIL, None, "TrainingError: loss became nan"
        else:
            attrs["dice"], attrs["train_time_s"] = values[0], rng.uniform(5, 30)
        trials.append(
            optuna.trial.create_trial(
                state=state, values=values, params={"depth": spec.depth}, distributions=dist, user_attrs=attrs
            )
        )
    study.add_trials(trials)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp())
    synthetic(folder, args.trials)
    loads, imps, builds = [], [], []
    for _ in range(3):
        t = time.perf_counter()
        r = load_results(folder)
        loads.append(time.perf_counter() - t)
        t = time.perf_counter()
        importances(r)
        imps.append(time.perf_counter() - t)
        t = time.perf_counter()
        page = build_page(r)
        builds.append(time.perf_counter() - t)
    load_s, imp_s, build_s = statistics.median(loads), statistics.median(imps), statistics.median(builds)
    line = (
        f"{args.trials} trials: loading the study + results table {load_s:.2f} s, building the page {build_s:.2f} s"
        f" (of which parameter importance, PED-ANOVA, {imp_s:.2f} s), together {load_s + build_s:.2f} s;"
        f" page {len(page) / 2**20:.1f} MiB, front {int(r.frame['pareto'].sum())} trials."
    )
    print(line)
    live = polling(folder)
    print(live)
    if not args.no_write:
        head = f"`python bench/dashboard_build.py --trials {args.trials}` on {machine()}; median of 3."
        write_section("dashboard-build", f"## Dashboard build time and live polling cost\n\n{head}\n\n{line}\n\n{live}")


def polling(folder: Path, quiet: int = 200, full: int = 20) -> str:
    """The live server's cost per poll, measured over HTTP on localhost."""
    import http.client
    import threading

    from skipsearch.serve import Watcher, _Server, handler_for

    watcher = Watcher(folder, None)
    t = time.perf_counter()
    watcher.refresh(force=True)
    rebuild_s = time.perf_counter() - t
    server = _Server(("127.0.0.1", 0), handler_for(watcher))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def get(headers: dict[str, str]) -> tuple[float, int, int]:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        start = time.perf_counter()
        conn.request("GET", "/api/results", headers=headers)
        answer = conn.getresponse()
        body = answer.read()
        took = time.perf_counter() - start
        conn.close()
        return took, answer.status, len(body)

    etag = watcher.snapshot.etag
    same = [get({"If-None-Match": etag}) for _ in range(quiet)]
    changed = [get({"Accept-Encoding": "gzip"}) for _ in range(full)]
    looks = []
    for _ in range(200):
        t = time.perf_counter()
        watcher.refresh()  # nothing changed: one stat per file
        looks.append(time.perf_counter() - t)
    server.shutdown()
    assert {s for _, s, _ in same} == {304} and {s for _, s, _ in changed} == {200}
    ms = lambda xs: statistics.median(xs) * 1e3  # noqa: E731
    return (
        f"Live server (`dashboard --serve`), over HTTP on localhost: a poll while the study is unchanged (304)"
        f" {ms([x for x, _, _ in same]):.2f} ms (median of {quiet}); a poll after a change (all the data, gzip,"
        f" {changed[0][2] / 2**20:.2f} MiB; {len(watcher.snapshot.body) / 2**20:.1f} MiB unzipped)"
        f" {ms([x for x, _, _ in changed]):.1f} ms (median of {full}); the server's look for a change"
        f" {ms(looks) * 1e3:.0f} us (stat calls, every {1:.0f} s); rebuilding the data after a change {rebuild_s:.2f} s"
        " (in the server's thread, once per change, not per poll)."
    )


if __name__ == "__main__":
    main()
