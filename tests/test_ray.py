"""The Ray Tune backend and scale-out on one box (slow: starts Ray; run with -m slow)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys

import optuna
import pytest
from test_search import write_study

from skipsearch.search.config import load_study
from skipsearch.search.rungs import front_members

pytestmark = [pytest.mark.slow, pytest.mark.ray]
ENV = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}


def run(args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "skipsearch.cli", *args], env=ENV, capture_output=True, text=True, timeout=600, **kw
    )


def summary(path):
    cfg = load_study(path)
    trials = optuna.load_study(study_name=cfg.name, storage=cfg.storage).trials
    return [(t.state.name, t.user_attrs.get("arch_id"), t.values) for t in trials], trials


def test_ray_backend_writes_the_same_study_as_local(tmp_path):
    a = write_study(tmp_path / "a", n_trials=4, concurrency=2)
    b = write_study(tmp_path / "b", n_trials=4, concurrency=1)
    assert run(["run", str(a)]).returncode == 0
    assert run(["run", str(b), "--backend", "local"]).returncode == 0
    ray_summary, trials = summary(a)
    assert len(ray_summary) == 4 and all(s in ("COMPLETE", "PRUNED") for s, _, _ in ray_summary), ray_summary
    trained = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None]
    assert trained and all(t.user_attrs.get("ray_trial_id") for t in trained)
    # the same sampler seed proposes the same architectures in the same order
    assert [x[1] for x in ray_summary] == [x[1] for x in summary(b)[0]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scale_out_with_ray_start_head_and_address(tmp_path):
    import tempfile

    port = free_port()
    temp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # Ray's socket paths must stay short
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    start = [ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}"]
    started = subprocess.run(start, env=ENV, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        path = write_study(tmp_path, n_trials=3)
        proc = run(["run", str(path), "--address", f"127.0.0.1:{port}"])
        assert proc.returncode == 0, proc.stderr[-2000:]
        states = [s for s, _, _ in summary(path)[0]]
        assert len(states) == 3 and "RUNNING" not in states
        assert any(t.user_attrs.get("ray_trial_id") for t in summary(path)[1])
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=ENV, capture_output=True, timeout=120)


def test_ray_with_fidelity_stops_trials_at_rungs_and_repeats_the_front(tmp_path):
    path = write_study(
        tmp_path,
        n_trials=6,
        concurrency=2,
        budget="{steps: 8, batch: 2, size: [32, 32]}",
        fidelity="{type: asha, min_steps: 2, eta: 2}",
        repeats="{seeds: 2, top: 2}",
    )
    proc = run(["run", str(path)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, trials = summary(path)
    trained = [t for t in trials if t.user_attrs.get("duplicate_of") is None and "infeasible" not in t.user_attrs]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trained), [t.user_attrs.get("failure") for t in trained]
    for t in trained:
        steps = [s for s, _ in t.user_attrs["curve"]]
        if t.state.name == "COMPLETE":
            assert steps == [2, 4, 8] and t.user_attrs["steps"] == 8  # never complete on a partial budget
        else:
            assert steps == [2, 4][: t.user_attrs["rung"] + 1]
    # the repeat runs start once the last trial has finished (Tune must not be told "finished" before)
    cfg = load_study(path)
    front = front_members(optuna.load_study(study_name=cfg.name, storage=cfg.storage), cfg)
    assert front and all(len(m.seeds) == 2 for m in front[:2]), [(m.number, len(m.seeds)) for m in front]


SITE = """
import os, sys, builtins
_real = builtins.__import__
def _hook(name, *a, **k):
    mod = _real(name, *a, **k)
    w = sys.modules.get("skipsearch.search.worker")
    if w is not None and hasattr(w, "run_trial") and not getattr(w, "_patched", False):
        w._patched, real = True, w.run_trial
        def run_trial(config, task=None, on_rung=None):
            if not os.path.exists(os.environ["CRASH_ONCE"]):  # the first trial's worker dies
                open(os.environ["CRASH_ONCE"], "w").close()
                os._exit(3)
            return real(config, task, on_rung)
        w.run_trial = run_trial
    return mod
builtins.__import__ = _hook
"""


def test_a_dead_worker_is_recorded_with_its_cause_and_the_terminal_stays_clean(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)  # loaded by every Ray worker: a fault from outside
    path = write_study(tmp_path, n_trials=3)
    env = {**ENV, "PYTHONPATH": str(site), "CRASH_ONCE": str(tmp_path / "crashed")}
    proc = subprocess.run(
        [sys.executable, "-m", "skipsearch.cli", "run", str(path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout and "raylet" not in proc.stderr + proc.stdout
    _, trials = summary(path)
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].user_attrs["failure"].startswith("the Ray worker process died")
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 2  # the study went on
    assert "ActorDiedError" in (tmp_path / "t" / "ray" / "ray-messages.log").read_text()


PACKED_SPACE = """name: packed
params:
  depth: {choice: [2, 3]}
  width: {choice: [8, 16, 32, 128]}
  block.type: naf
  skip.type: {choice: [none, plain]}
"""
# a Ray with one GPU that is only a resource (this machine need not have one): the shares,
# Ray's placement and the times are real, the training runs on the CPU
FAKE_GPU_DRIVER = """import os, sys
os.environ.setdefault("RAY_AUTH_MODE", "token")
import ray
ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
from skipsearch.search.run import run_study
sys.exit(0 if run_study(sys.argv[1]).finished else 1)
"""


def test_gpus_auto_packs_trials_onto_a_gpu_by_predicted_memory(tmp_path):
    from skipsearch.costs.training import train_memory
    from skipsearch.spec import ArchSpec

    (tmp_path / "space.yaml").write_text(PACKED_SPACE)
    path = write_study(
        tmp_path,
        space=tmp_path / "space.yaml",
        n_trials=8,
        concurrency=4,
        budget="{steps: 2, batch: 2, size: [128, 128]}",
        resources="{cpus: 1, gpus: auto, gpu_memory: 1 GiB, gpu_context: 128 MiB}",
    )
    proc = subprocess.run(
        [sys.executable, "-c", FAKE_GPU_DRIVER, str(path)], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load_study(path)
    _, trials = summary(path)
    assert {t.user_attrs["slot"] for t in trials} == set(range(8))  # a repeated architecture is asked again
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    trained = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None]
    assert len(trained) >= 3
    for t in trials:
        spec = ArchSpec.from_json(t.user_attrs["spec"])
        peak = train_memory(spec, cfg.budget).peak_bytes
        share = max(0.01, math.ceil((math.ceil(peak * 1.25) + 128 * 2**20) / 2**30 * 100 - 1e-6) / 100)
        assert t.user_attrs["gpu_share"] == pytest.approx(share)
        if share > 1:  # the width-128 networks: refused without training
            assert t.state.name == "PRUNED" and "more than a GPU's 1.00 GiB" in t.user_attrs["infeasible"]
    placed = [t.user_attrs["gpu"] for t in trained]
    assert all(g["ids"] == ["0"] and g["share"] == t.user_attrs["gpu_share"] for g, t in zip(placed, trained, strict=True))
    # at every moment a trial started, the trials then on the GPU hold at most all of it,
    # and at some moment two or more shared it (packing by memory, not one per GPU)
    together = [[g for g in placed if g["start"] <= s["start"] < g["end"]] for s in placed]
    assert max(sum(g["share"] for g in group) for group in together) <= 1 + 1e-9
    assert max(len(group) for group in together) >= 2


def test_gpus_auto_on_a_cluster_without_gpus_is_one_line_before_the_study_is_touched(tmp_path):
    path = write_study(tmp_path, resources="{gpus: auto}")
    proc = run(["run", str(path)])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "resources.gpus: auto, but the Ray cluster has no GPU" in lines[0], proc.stderr
    assert str(path) in lines[0] and not (tmp_path / "t").exists()


def test_sync_runs_on_ray_and_locally_give_the_same_study(tmp_path):
    """schedule: sync: two Ray runs at concurrency 2 and a local run of a small study with
    fidelity and seed racing: the same trials, rung decisions, racing rounds and front."""
    from schedule_helpers import canonical, stored
    from test_schedule import _local_study

    paths = [_local_study(tmp_path / name) for name in ("ray1", "ray2", "local")]
    for path, extra in zip(paths, ([], [], ["--backend", "local"]), strict=True):
        proc = run(["run", str(path), *extra])
        assert proc.returncode == 0, proc.stderr[-2000:]
    first, *others = [canonical(stored(p)) for p in paths]
    assert all(o == first for o in others)
    states = [row[0] for row in first["trials"].values()]
    assert "PRUNED" in states and first["racing"].get("racing:round:0")
    ray_ids = [t.user_attrs.get("ray_trial_id") for t in stored(paths[0]).trials]
    assert any(ray_ids)  # it did run on Ray


def test_a_reduced_quickstart_twice_on_ray_gives_the_same_study_and_front(tmp_path):
    """The README's main job, smaller (fewer trials and steps), run twice on Ray at
    concurrency 2: the whole trial tables (specs, states, rungs, values, racing) and the
    printed fronts are the same."""
    from pathlib import Path

    import yaml
    from schedule_helpers import canonical, stored

    root = Path(__file__).resolve().parent.parent
    data = yaml.safe_load((root / "studies" / "quickstart.yaml").read_text())
    data.update(
        n_trials=6,
        space=str(root / "search_spaces" / "tiny.yaml"),
        task={"name": "shapes", "train_samples": 64, "val_samples": 16},
        budget={"steps": 40, "batch": 4, "size": [32, 32], "lr": 0.004},
        fidelity={"type": "asha", "min_steps": 10, "eta": 2},
        repeats={"max_seeds": 3, "confidence": 0.9, "runs": 2},
        reference_input=[3, 64, 64],
    )
    data.pop("table")
    fronts, tables = [], []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        path = tmp_path / name / "quickstart.yaml"
        path.write_text(yaml.safe_dump(data))
        proc = run(["run", str(path)])
        assert proc.returncode == 0, proc.stderr[-2000:]
        fronts.append(proc.stdout)
        tables.append(canonical(stored(path)))
    assert tables[0] == tables[1] and fronts[0] == fronts[1]
    assert "Pareto front of 'quickstart'" in fronts[0]
