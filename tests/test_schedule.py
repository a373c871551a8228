"""schedule: sync: the same study file gives the same trials, rung decisions, seed racing
and front, whatever the workers' timing, the backend or a kill -9 on the way."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from schedule_helpers import canonical, stored
from test_search import write_study

from skipsearch.cli import main
from skipsearch.search.config import load_study
from skipsearch.search.racing import Entry, confidence, plan_round
from skipsearch.search.repeats import Repeats
from skipsearch.search.run import _table, make_runner
from skipsearch.search.schedule import SlotBook
from skipsearch.search.tabular import run_tabular

ROOT = Path(__file__).resolve().parent.parent
DIRS = ["maximize", "minimize"]


# -- the slot book: plain data ------------------------------------------------------------
def test_a_rung_waits_for_every_lower_slot_then_ranks_among_them():
    book = SlotBook(4, concurrency=4, eta=2, directions=DIRS)
    for s in range(4):
        book.fill(s, 10 + s)
    book.reach(2, 100, [0.9, 1.0])
    assert book.verdict(2, 100) is None  # slots 0 and 1 may still reach the rung
    book.reach(0, 100, [0.5, 1.0])
    book.finish(1)  # finished before the rung (failed, say): nothing to wait for
    assert book.verdict(2, 100) is True  # top 1 of {0, 2}
    assert book.verdict(0, 100) is False  # the same cohort: the one that is not on top stops


def test_the_first_at_a_rung_waits_for_a_cohort_of_eta_and_goes_on_alone_only_when_nothing_runs_beside_it():
    book = SlotBook(3, concurrency=2, eta=2, directions=DIRS)
    book.fill(0, 0)
    book.reach(0, 100, [0.9, 1.0])
    assert book.verdict(0, 100) is None  # slot 1 runs beside it: wait for it
    book.fill(1, 1)
    book.reach(1, 100, [0.95, 1.0])
    assert (book.verdict(0, 100), book.verdict(1, 100)) == (False, True)
    alone = SlotBook(3, concurrency=1, eta=2, directions=DIRS)
    alone.fill(0, 0)
    alone.reach(0, 100, [0.1, 1.0])
    assert alone.verdict(0, 100) is True  # concurrency 1: nothing can run beside it


def test_ties_at_a_rung_fall_to_the_lower_slot_and_asking_waits_for_the_slots_c_below():
    book = SlotBook(6, concurrency=4, eta=2, directions=DIRS, lag=4)
    for s, vector in enumerate(([0.9, 1.0], [0.3, 3.0], [0.5, 2.0], [0.5, 2.0])):  # 2 and 3 tie, both dominated
        book.fill(s, s)
        book.reach(s, 50, vector)
    # each slot ranked among those below it: 3 is the top 2 of 4 only if the tie with 2 went its way
    assert [book.verdict(s, 50) for s in range(4)] == [True, False, True, False]
    assert book.can_ask(3) and not book.can_ask(4)
    book.finish(0)
    assert book.can_ask(4) and not book.can_ask(5) and book.view_limit(4) == 1
    assert SlotBook(6, concurrency=2, eta=2, directions=DIRS).lag == 4  # by default twice the concurrency


def test_a_trial_that_no_other_dominates_at_a_rung_goes_on():
    book = SlotBook(3, concurrency=1, eta=2, directions=DIRS)
    for s, vector in enumerate(([0.9, 2.0], [0.8, 1.0], [0.85, 3.0])):
        book.fill(s, s)
        book.reach(s, 50, vector)
        book.finish(s)
    # slot 1 ranks second of two, but nothing as good costs as little: the best at its cost goes on
    assert [book.verdict(s, 50) for s in range(3)] == [True, True, False]


def test_verdicts_do_not_depend_on_the_order_events_arrive():
    rng = np.random.default_rng(0)
    vectors = {(s, r): [float(rng.random()), float(s % 3)] for s in range(8) for r in (10, 20)}
    reach = {s: [10, 20][: 1 + s % 2] for s in range(8)}  # even slots end after the first rung
    outcomes = set()
    for order_seed in range(6):
        book = SlotBook(8, concurrency=8, eta=2, directions=DIRS)
        events = [(s, r) for s in range(8) for r in reach[s]]
        np.random.default_rng(order_seed).shuffle(events)
        for s in range(8):
            book.fill(s, s)
        done = set()
        for s, r in sorted(events, key=lambda e: e[1]):  # a trial reaches 20 after 10
            book.reach(s, r, vectors[(s, r)])
            if r == reach[s][-1]:
                book.finish(s)
                done.add(s)
        outcomes.add(tuple(book.verdict(s, r) for s in range(8) for r in reach[s]))
    assert len(outcomes) == 1 and None not in next(iter(outcomes))


# -- racing: plain data -------------------------------------------------------------------
def test_racing_gives_seeds_only_to_undecided_members_most_undecided_first():
    clear = Entry(0, 0, [[0.90, 1.0], [0.91, 1.0]])  # alone at its cost, far ahead: decided on
    worse = Entry(1, 1, [[0.40, 2.0], [0.41, 2.0]])  # dominated by `clear` whatever happens: decided off
    close_a = Entry(2, 2, [[0.93, 3.0]])  # two near-ties above it: undecided
    close_b = Entry(3, 3, [[0.935, 3.0]])
    entries = [clear, worse, close_a, close_b]
    conf = confidence(entries, DIRS, [True, False], seed=0)
    assert conf[0] > 0.99 and conf[1] == 0.0 and 0.1 < conf[2] < 0.9 and 0.1 < conf[3] < 0.9
    plan = plan_round(entries, DIRS, [True, False], max_seeds=3, level=0.9, runs_left=10, seed=0)
    assert sorted(plan) == [(2, 1), (3, 1)]
    assert plan_round(entries, DIRS, [True, False], max_seeds=3, level=0.9, runs_left=1, seed=0) == plan[:1]
    assert plan_round(entries, DIRS, [True, False], max_seeds=1, level=0.9, runs_left=10, seed=0) == []


def test_the_first_round_seeds_the_front_before_any_spread_is_known():
    entries = [Entry(5, 0, [[0.8, 2.0]]), Entry(6, 1, [[0.7, 1.0]]), Entry(7, 2, [[0.6, 3.0]])]
    assert plan_round(entries, DIRS, [True, False], max_seeds=3, level=0.9, runs_left=10, seed=0) == [(5, 1), (6, 1)]


# -- whole studies ----------------------------------------------------------------------
def _tabular(concurrency: int, timing: int | None, n_trials: int = 24):
    cfg = load_study(ROOT / "studies" / "tabular.yaml")
    cfg.n_trials, cfg.concurrency = n_trials, concurrency
    cfg.repeats = Repeats(3, None, 0.9, 10)
    runner = make_runner(cfg)
    try:
        idle = run_tabular(runner, lambda line: None, _table(cfg), timing=timing)
        return canonical(runner.study), idle
    finally:
        runner.close()


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_worker_timing_changes_nothing_on_the_tabular_backend(concurrency):
    first, idle = _tabular(concurrency, None)
    for timing in (1, 2):
        again, other = _tabular(concurrency, timing)
        assert again == first
        assert other.makespan != idle.makespan  # the timings did differ
    states = [row[0] for row in first["trials"].values()]
    assert states.count("PRUNED") and states.count("COMPLETE") and first["racing"]["racing:done"]


def test_optuna_readers_see_the_raced_front(tmp_path):
    """After racing, the values Optuna stores are the means skipsearch reports, so
    study.best_trials (optuna-dashboard, plots) and skipsearch agree on the front."""
    import optuna

    from skipsearch.results import load_results
    from skipsearch.search.rungs import front_members

    path = write_study(
        tmp_path,
        n_trials=6,
        task="photos-denoise",
        budget="{steps: 6, batch: 2, size: [32, 32]}",
        repeats="{max_seeds: 3, runs: 6}",
        fidelity="{type: asha, min_steps: 2, eta: 2}",
    )
    assert main(["run", str(path), "--backend", "local"]) == 0
    study = optuna.load_study(study_name="t", storage=load_study(path).storage)
    front = front_members(study, load_study(path))
    raced = [m for m in front if len(m.seeds) > 1]
    assert raced, [(m.number, m.seeds) for m in front]
    best = {t.user_attrs["arch_id"]: t.values for t in study.best_trials}  # a duplicate shows its original's mean
    assert best == {m.trial.user_attrs["arch_id"]: m.values for m in front}
    frame = load_results(tmp_path / "t").frame
    for m in raced:  # the table reads the first seed from the trial, the others from the study: no double count
        assert m.seeds[0][0] == m.trial.user_attrs["psnr"]
        assert m.trial.values == pytest.approx(m.values) and m.values[0] != m.seeds[0][0]
        row = frame[frame["number"] == m.number].iloc[0]
        assert row["n_seeds"] == len(m.seeds) and row["psnr"] == pytest.approx(np.mean([s[0] for s in m.seeds]))


def _local_study(tmp_path: Path, **fields) -> Path:
    return write_study(
        tmp_path,
        n_trials=8,
        concurrency=2,
        task="photos-denoise",  # PSNR differs between architectures after a few steps (dice would be 0)
        budget="{steps: 12, batch: 2, size: [32, 32], lr: 0.004}",
        fidelity="{type: asha, min_steps: 4, eta: 2}",
        repeats="{max_seeds: 3, runs: 4}",
        **fields,
    )


def test_two_local_runs_at_concurrency_2_give_the_same_study(tmp_path):
    a, b = _local_study(tmp_path / "a"), _local_study(tmp_path / "b")
    for path in (a, b):
        assert main(["run", str(path), "--backend", "local"]) == 0
    first, second = canonical(stored(a)), canonical(stored(b))
    assert first == second
    states = [row[0] for row in first["trials"].values()]
    assert "PRUNED" in states and first["racing"].get("racing:round:0")


def _until(path: Path, sql: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    db = path.parent / "t" / "study.db"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    if con.execute(sql).fetchall():
                        return
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    raise AssertionError(f"never: {sql}")


AT_RUNG = (
    "SELECT 1 FROM trials t JOIN trial_user_attributes a USING (trial_id) "
    "WHERE t.state = 'RUNNING' AND a.key = 'rungs' AND (SELECT COUNT(*) FROM trials WHERE state = 'RUNNING') >= 2"
)
RACING = "SELECT 1 FROM study_user_attributes WHERE key = 'racing:round:0'"


@pytest.mark.parametrize("where", ["rung", "racing"])
def test_kill_9_then_resume_ends_as_the_uninterrupted_run(tmp_path, where):
    reference = _local_study(tmp_path / "ref")
    assert main(["run", str(reference), "--backend", "local"]) == 0
    path = _local_study(tmp_path / "killed")
    cmd = [sys.executable, "-m", "skipsearch.cli", "run", str(path), "--backend", "local"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _until(path, AT_RUNG if where == "rung" else RACING, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    study = stored(path)
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    assert canonical(study) == canonical(stored(reference))


def test_deterministic_budget_trains_the_same_and_is_checked():
    import torch

    from skipsearch import Budget, UserError, evaluate
    from skipsearch.testing import small_spec

    try:
        budget = Budget(steps=3, batch=2, size=(32, 32), deterministic=True, device="cpu")
        runs = [evaluate(small_spec("conv", "plain", 2), "shapes", budget) for _ in range(2)]
        assert torch.are_deterministic_algorithms_enabled()
        assert runs[0]["final_loss"] == runs[1]["final_loss"] and runs[0]["dice"] == runs[1]["dice"]
    finally:
        torch.use_deterministic_algorithms(False)
    with pytest.raises(UserError, match="budget deterministic: 'yes' is invalid; allowed: true, false"):
        Budget(deterministic="yes")
