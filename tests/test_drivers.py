"""Drivers sharing a study: two at once, a killed one, duplicates sampled concurrently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_search import trials_of, write_study

from skipsearch.search.attrs import INTERRUPTED, SURPLUS
from skipsearch.search.config import load_study
from skipsearch.search.jobs import RepeatJob
from skipsearch.search.study import Runner


def _cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", "skipsearch.cli", "run", str(path), "--backend", "local"]


def _trained(trials) -> list[str]:
    return [t.user_attrs["arch_id"] for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None]


def test_two_drivers_on_one_study_run_to_the_end(tmp_path):
    # 8 trials over a space of 8 architectures: the drivers sample the same ones and overlap
    path = write_study(tmp_path, n_trials=8, budget="{steps: 40, batch: 2, size: [32, 32]}", schedule="async")
    first = subprocess.Popen(_cmd(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while "study 't'" not in first.stderr.readline():  # the study exists: start the second on it
        assert first.poll() is None, first.stderr.read()
    second = subprocess.Popen(_cmd(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = [p.communicate(timeout=300)[1] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, out
    assert not any("Traceback" in o for o in out), out
    trials = trials_of(path)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    reasons = [t.user_attrs.get("failure") for t in trials if t.state.name == "FAIL"]
    assert INTERRUPTED not in reasons  # neither took the other's running trial for dead
    counted = [t for t in trials if t.state.is_finished() and t.user_attrs.get("failure") not in (INTERRUPTED, SURPLUS)]
    assert len(counted) == 8  # n_trials, not exceeded
    assert len({t.user_attrs["driver"] for t in trials}) == 2  # both drivers worked on it
    trained = _trained(trials)
    assert len(trained) == len(set(trained))  # no architecture trained twice


def test_a_duplicate_of_a_running_trial_waits_for_its_result(tmp_path):
    space = tmp_path / "one.yaml"
    space.write_text("params:\n  depth: 2\n  width: 8\n  block.type: naf\n")  # one architecture
    runner = Runner(load_study(write_study(tmp_path, space=space, n_trials=3)))
    first = runner.next_trial()
    assert first is not None
    assert runner.next_trial() is None  # the other two are the same architecture: they wait
    waiting = [t for t in runner.study.get_trials() if t.state.name == "RUNNING" and "waiting_for" in t.user_attrs]
    assert len(waiting) == 2
    result = {"dice": 0.5, "iou": 0.4, "mdice": 0.6, "miou": 0.5, "train_time_s": 1.0, "curve": [[2, 0.5]], "steps": 2}
    first.finish(result)
    trials = runner.study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.user_attrs.get("duplicate_of") for t in trials] == [None, 0, 0]
    assert trials[1].values == trials[2].values == trials[0].values
    runner.close()


def test_a_seed_preset_cut_off_by_kill_9_is_evaluated_on_resume(tmp_path):
    path = write_study(tmp_path, n_trials=2, seed_presets="[tiny-naf]", budget="{steps: 400, batch: 2, size: [32, 32]}")
    proc = subprocess.Popen(_cmd(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    while "study 't'" not in proc.stderr.readline():
        assert proc.poll() is None
    time.sleep(3)  # inside the preset's training (the first trial)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = trials_of(path)
    assert [(t.state.name, t.user_attrs.get("preset")) for t in before] == [("RUNNING", "tiny-naf")]
    path.write_text(path.read_text().replace("steps: 400", "steps: 2"))
    assert subprocess.run(_cmd(path), capture_output=True, text=True).returncode == 0
    after = trials_of(path)
    assert after[0].state.name == "FAIL" and after[0].user_attrs["failure"] == INTERRUPTED
    presets = [t for t in after if t.user_attrs.get("preset") == "tiny-naf" and t.state.name == "COMPLETE"]
    assert all(t.user_attrs.get("duplicate_of") is None for t in presets)  # a duplicate is not labelled a preset
    assert len(presets) == 1 and presets[0].number == 1  # tried again, before any sampled point


def test_a_runner_can_be_pickled_for_ray_tune(tmp_path):
    """Tune pickles its search algorithm, and with it the runner: the copy must not beat."""
    from ray import cloudpickle

    runner = Runner(load_study(write_study(tmp_path, n_trials=1)))
    copy = cloudpickle.loads(cloudpickle.dumps(runner))
    assert copy.heart.stop.is_set() and not copy.heart.ids
    runner.close()


def test_two_drivers_share_the_repeat_runs_without_overlap(tmp_path):
    from skipsearch.cli import main
    from skipsearch.search.repeats import Repeats, assemble

    path = write_study(tmp_path, n_trials=3, schedule="async")
    assert main(["run", str(path), "--backend", "local"]) == 0
    cfg = load_study(path)
    cfg.repeats = Repeats(seeds=3, top=1)  # the front's best member: two more seeds
    a, b = Runner(cfg), Runner(load_study(path))
    b.cfg.repeats = cfg.repeats
    first, second = a.next_trial(), b.next_trial()
    assert isinstance(first, RepeatJob) and isinstance(second, RepeatJob) and first.key != second.key
    assert a.next_trial() is None and b.next_trial() is None  # each run is claimed by a live driver
    for job in (first, second):
        job.finish({"dice": 0.5, "iou": 0.4, "mdice": 0.6, "miou": 0.5})
    record = assemble(a.study.user_attrs)
    (entry,) = record.values()
    assert len(entry["values"]) == 2 and len(set(entry["seeds"])) == 2  # each seed once
    a.close(), b.close()


def test_a_second_driver_on_a_sync_study_is_refused_with_one_line(tmp_path):
    """schedule: sync runs one driver at a time: a second is refused before it asks a trial,
    and the first finishes the study alone, as it would have without the second."""
    path = write_study(tmp_path, n_trials=4, budget="{steps: 300, batch: 2, size: [32, 32]}")
    first = subprocess.Popen(_cmd(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while "study 't'" not in first.stderr.readline():
        assert first.poll() is None, first.stderr.read()
    second = subprocess.run(_cmd(path), capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    (line,) = second.stderr.strip().splitlines()
    assert "is being run by another driver" in line and "schedule: async" in line
    assert first.wait(timeout=300) == 0
    trials = trials_of(path)
    assert len(trials) == 4 and {t.user_attrs["driver"] for t in trials} == {trials[0].user_attrs["driver"]}
    assert [t.user_attrs["slot"] for t in trials] == [0, 1, 2, 3]


def test_drivers_started_together_on_a_sync_study_leave_one_running(tmp_path):
    path = write_study(tmp_path, n_trials=4)
    assert subprocess.run([*_cmd(path), "--trials", "1"], capture_output=True).returncode == 0  # the study exists
    procs = [subprocess.Popen(_cmd(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[1] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 2]), outs  # both 0 only if one started after the other had finished
    assert not any("Traceback" in o for o in outs), outs
    trials = trials_of(path)
    assert sorted(t.user_attrs["slot"] for t in trials) == [0, 1, 2, 3]
    assert all(t.state.is_finished() for t in trials)


def test_opening_a_new_database_another_driver_is_creating_tries_again(tmp_path, monkeypatch):
    """Two drivers creating one new SQLite file both write Optuna's schema; the loser fails on
    the version stamp and must open the finished schema instead of dying."""
    import optuna
    import pytest
    from sqlalchemy.exc import IntegrityError, OperationalError

    from skipsearch.search import storage

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed: alembic_version"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    assert storage.make_storage(f"sqlite:///{tmp_path / 'new.db'}") is not None and len(calls) == 2

    def broken(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    with pytest.raises(OperationalError):  # not a schema race: raised at once
        storage.make_storage(f"sqlite:///{tmp_path / 'other.db'}")
