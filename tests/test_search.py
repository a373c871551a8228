"""Search studies: spaces, study files (a corpus of bad ones), the local backend, faults, resume."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from skipsearch import UserError
from skipsearch.cli import main
from skipsearch.search.attrs import INTERRUPTED
from skipsearch.search.config import load_study
from skipsearch.search.space import SearchSpace
from skipsearch.search.study import Runner

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).resolve().parent.parent


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first[len("# expect: ") :]


@pytest.mark.parametrize("path", sorted((CORPUS / "spaces").glob("*.yaml")), ids=lambda p: p.stem)
def test_space_corpus(path):
    if path.stem == "ok":
        assert len(SearchSpace.load(path).dims) == 5
        return
    with pytest.raises(UserError) as info:
        SearchSpace.load(path)
    assert expected(path) in str(info.value) and path.name in str(info.value)


@pytest.mark.parametrize("path", sorted((CORPUS / "studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_study_corpus_one_line_exit_2(path, capsys):
    assert main(["run", str(path), "--backend", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected(path) in err[0] and path.name in err[0]
    assert not (path.parent / path.stem).exists()  # nothing created


def test_shipped_spaces_and_studies_load(tmp_path, monkeypatch):
    import shutil

    from skipsearch.tasks.raw_demo import write

    for p in (ROOT / "search_spaces").glob("*.yaml"):
        SearchSpace.load(p)
    for p in (ROOT / "studies").glob("*.yaml"):
        if p.name == "nnunet-raw.yaml":
            continue  # below: it reads the README's demo dataset
        cfg = load_study(p)
        assert cfg.n_trials >= 1 and cfg.objectives
    write(tmp_path / "demo" / "Dataset001_Shapes", 5, (12, 16, 16))
    (tmp_path / "studies").mkdir()
    shutil.copy(ROOT / "studies" / "nnunet-raw.yaml", tmp_path / "studies")
    shutil.copytree(ROOT / "search_spaces", tmp_path / "search_spaces")
    monkeypatch.setenv("SKIPSEARCH_CACHE", str(tmp_path / "cache"))
    cfg = load_study(tmp_path / "studies" / "nnunet-raw.yaml")
    assert cfg.make_task().spatial_dims == 3 and len(cfg.budget.size) == 3


def test_conditional_parameters_only_when_active():
    space = SearchSpace.load(ROOT / "search_spaces" / "skip-designs.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        point = space.suggest(study.ask())
        assert ("block.n" in point) == (point["block.type"] == "cmrf")
        assert ("skip.target" in point) == (point["skip.type"] == "msiam_iem")


def write_study(tmp_path: Path, **fields) -> Path:
    base = {
        "name": "t",
        "task": "{name: shapes, train_samples: 16, val_samples: 8}",
        "space": str(CORPUS / "spaces" / "ok.yaml"),
        "sampler": "random",
        "n_trials": "5",
        "budget": "{steps: 2, batch: 2, size: [32, 32]}",
        "reference_input": "[3, 64, 64]",
        "resources": "{cpus: 1}",
    }
    base.update({k: str(v) for k, v in fields.items()})
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "study.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in base.items()))
    return path


def trials_of(path: Path) -> list:
    cfg = load_study(path)
    return optuna.load_study(study_name=cfg.name, storage=cfg.storage).trials


def test_local_run_records_everything(tmp_path, capsys):
    path = write_study(
        tmp_path, n_trials=6, seed_presets="[tiny-naf]", constraints="[{objective: skip_memory_bytes, max: 200 KiB}]"
    )
    assert main(["run", str(path), "--backend", "local"]) == 0
    trials = trials_of(path)
    finished = [t for t in trials if t.state.is_finished()]
    assert len(finished) == 6 and not [t for t in trials if t.state.name == "RUNNING"]
    assert trials[0].user_attrs["preset"] == "tiny-naf"
    for t in trials:
        assert {"spec", "arch_id", "skip_memory_bytes", "params", "macs", "skip_timeline"} <= set(t.user_attrs)
        if t.state.name == "PRUNED":
            assert "skip_memory_bytes" in t.user_attrs["infeasible"] and t.user_attrs["skip_memory_bytes"] > 200 * 1024
        if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None:
            assert {"dice", "train_time_s", "weights"} <= set(t.user_attrs)
            assert Path(t.user_attrs["weights"]).exists()
            assert t.values[1] == t.user_attrs["skip_memory_bytes"] <= 200 * 1024
    assert "Pareto front of 't'" in capsys.readouterr().out


@pytest.mark.parametrize("schedule", ["async", "sync"])
def test_duplicates_are_not_trained_again(tmp_path, schedule):
    from skipsearch.search.sync import MAX_ATTEMPTS

    # a one-point space: every trial after the first is the same architecture
    space = tmp_path / "one.yaml"
    space.write_text("params:\n  depth: 2\n  width: 8\n  block.type: naf\n")
    path = write_study(tmp_path, space=space, n_trials=3, schedule=schedule)
    assert main(["run", str(path), "--backend", "local"]) == 0
    trials = trials_of(path)
    # sync: a repeated architecture gives its slot back, asked again up to MAX_ATTEMPTS times
    again = 1 if schedule == "async" else MAX_ATTEMPTS
    assert [t.user_attrs.get("duplicate_of") for t in trials] == [None] + [0] * (2 * again)
    assert trials[1].values == trials[0].values and "train_time_s" in trials[0].user_attrs
    assert len(list((tmp_path / "t" / "trials").iterdir())) == 1  # trained once


def test_invalid_specs_and_failures_are_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    space = tmp_path / "bad.yaml"
    space.write_text("params:\n  depth: 2\n  width: {choice: [8, 12]}\n  block.type: cmrf\n  block.n: 4\n  lr_marker: 1\n")
    with pytest.raises(UserError, match="params.lr_marker: unknown ArchSpec field"):
        SearchSpace.load(space)
    space.write_text("params:\n  depth: 2\n  width: {choice: [8, 12, 16]}\n  block.type: cmrf\n  block.n: 4\n")
    path = write_study(tmp_path, space=space, n_trials=5)

    import skipsearch.search.worker as worker

    real = worker.run_trial

    def flaky(config, task=None, on_rung=None):  # the first trained trial blows up inside evaluate()
        if not flaky.done:
            flaky.done = True
            return {"failure": "TrainingError: loss became nan at step 1"}
        return real(config, task, on_rung)

    flaky.done = False
    monkeypatch.setattr("skipsearch.search.local_backend.run_trial", flaky)
    assert main(["run", str(path), "--backend", "local"]) == 0
    trials = trials_of(path)
    reasons = [t.user_attrs.get("failure", "") for t in trials if t.state.name == "FAIL"]
    assert any(r.startswith("invalid spec: field 'block.n'") for r in reasons)  # width 12 with n=4
    assert "TrainingError: loss became nan at step 1" in reasons
    assert all(t.state.is_finished() for t in trials) and {t.user_attrs["slot"] for t in trials} == set(range(5))


def test_rerun_continues_up_to_n_trials(tmp_path):
    path = write_study(tmp_path, n_trials=2)
    assert main(["run", str(path), "--backend", "local"]) == 0
    assert main(["run", str(path), "--backend", "local", "--trials", "4"]) == 0
    assert len(trials_of(path)) == 4
    assert main(["run", str(path), "--backend", "local", "--trials", "4"]) == 0
    assert len(trials_of(path)) == 4  # already there: nothing more


def test_kill_9_then_resume(tmp_path):
    path = write_study(tmp_path, n_trials=4, budget="{steps: 60, batch: 2, size: [32, 32]}")
    cmd = [sys.executable, "-m", "skipsearch.cli", "run", str(path), "--backend", "local"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until at least one trial is complete and another is running
        line = proc.stderr.readline()
        if "1 complete" in line or "2 complete" in line:
            break
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = trials_of(path)
    assert any(t.state.name == "RUNNING" for t in before)
    done_before = {t.number for t in before if t.state.name == "COMPLETE"}
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    after = trials_of(path)
    assert not [t for t in after if t.state.name == "RUNNING"]
    assert [t.user_attrs["failure"] for t in after if t.state.name == "FAIL"] == [INTERRUPTED]
    assert done_before <= {t.number for t in after if t.state.name == "COMPLETE"}
    counted = [t for t in after if t.state.is_finished() and t.user_attrs.get("failure") != INTERRUPTED]
    assert len(counted) == 4
    trained = [t.user_attrs["arch_id"] for t in after if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None]
    assert len(trained) == len(set(trained))  # no architecture trained twice


def test_runner_recovers_stale_running_trials(tmp_path):
    path = write_study(tmp_path, n_trials=2)
    cfg = load_study(path)
    runner = Runner(cfg)
    runner.study.ask()  # left RUNNING, as by a killed driver
    again = Runner(cfg)
    assert again.recovered == 1 and again.remaining() == 2


def test_study_is_plain_optuna(tmp_path):
    path = write_study(tmp_path, n_trials=2)
    assert main(["run", str(path), "--backend", "local"]) == 0
    cfg = load_study(path)
    study = optuna.load_study(study_name="t", storage=cfg.storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.user_attrs["config"]["objectives"] == [["dice", "maximize"], ["skip_memory_bytes", "minimize"]]


def test_ctrl_c_stops_cleanly(tmp_path):
    path = write_study(tmp_path, n_trials=6, budget="{steps: 400, batch: 2, size: [32, 32]}")
    cmd = [sys.executable, "-m", "skipsearch.cli", "run", str(path), "--backend", "local"]
    # SIGINT back to its default in the child: a shell that starts the tests in the background ignores it
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    deadline = time.time() + 120
    while time.time() < deadline and "study 't'" not in proc.stderr.readline():
        pass
    time.sleep(3)  # inside the first trial's training
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "stopped:" in proc.stderr.read()
    trials = trials_of(path)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert trials[-1].user_attrs.get("failure") == INTERRUPTED


def test_sampler_options_reach_the_sampler(tmp_path):
    from skipsearch.search.opening import make_sampler

    for kind, option, attr in (
        ("nsga2", "population: 5", "_population_size"),
        ("tpe", "n_startup_trials: 3", "_n_startup_trials"),
    ):
        cfg = load_study(write_study(tmp_path / kind, sampler=f"{{type: {kind}, {option}}}"))
        sampler = make_sampler(cfg)
        assert getattr(sampler.inner, attr) == int(option.split(": ")[1])  # schedule: sync wraps it (sampling.py)
