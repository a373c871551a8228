"""The driver's trial lifecycle: attribute names live in one module, jobs own their end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_search import write_study

from skipsearch.search import attrs as A
from skipsearch.search.config import load_study
from skipsearch.search.jobs import RepeatJob, TrialJob
from skipsearch.search.repeats import Repeats, assemble
from skipsearch.search.study import Runner

PACKAGE = Path(__file__).resolve().parent.parent / "skipsearch"
BARE_KEY = re.compile(r"""(set_user_attr\(\s*["']|user_attrs(\.get)?[\(\[]\s*["']|set_trial_user_attr\([^,]+,\s*["'])""")
RESULT = {"dice": 0.5, "iou": 0.4, "mdice": 0.6, "miou": 0.5, "train_time_s": 1.0, "steps": 2}


def test_no_module_names_a_stored_attribute_with_a_bare_string():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "attrs.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BARE_KEY.search(line)
    ]
    assert not offenders, "name the key in skipsearch/search/attrs.py:\n" + "\n".join(offenders)


def test_readers_give_typed_values_or_none():
    stored = {A.DUPLICATE_OF: 3, A.SLOT: True, A.FAILURE: 7, A.RUNGS: {"20": {"dice": 0.1}, "5": {"dice": 0.0}}}
    assert A.duplicate_of(stored) == 3
    assert A.slot(stored) is None  # a bool is not a slot
    assert A.failure(stored) is None and A.attempt(stored) == 0
    assert list(A.rungs(stored)) == [5, 20]  # by step, as integers
    assert A.repeated(stored) and not A.trained(stored)
    assert A.counted({A.FAILURE: "out of memory"}) and not A.counted({A.FAILURE: A.INTERRUPTED})


def _runner(tmp_path, **kw) -> Runner:
    return Runner(load_study(write_study(tmp_path, schedule="async", **kw)))


def test_a_trial_job_completes_stops_and_fails_by_itself(tmp_path):
    runner = _runner(tmp_path, n_trials=3)
    done, stopped, failed = (runner.next_trial() for _ in range(3))
    assert all(isinstance(j, TrialJob) for j in (done, stopped, failed))
    stopped.store_rung(1, {"dice": 0.2})
    done.finish(RESULT)
    stopped.finish({A.STOPPED_AT: 1})
    failed.finish({A.FAILURE: "out of memory"})
    trials = runner.study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "FAIL"]
    assert trials[1].user_attrs[A.STEPS] == 1 and trials[1].user_attrs["dice"] == 0.2  # the rung's figures
    assert A.failure(trials[2]) == "out of memory"
    runner.close()


def test_a_repeat_job_is_recorded_with_its_original_and_an_interrupted_one_is_not(tmp_path):
    path = write_study(tmp_path, n_trials=1, schedule="async")
    runner = Runner(load_study(path))
    runner.next_trial().finish(RESULT)
    runner.cfg.repeats = Repeats(seeds=3, top=1)
    first, second = runner.next_trial(), runner.next_trial()
    assert isinstance(first, RepeatJob) and (first.index, second.index) == (1, 2)
    assert first.out is None and first.rung_steps == [] and first.order > 10**8
    first.interrupt()
    second.fail("a crash")
    assert runner.repeating == set()
    record = assemble(runner.study.user_attrs)["0"]
    assert record["values"] == [] and record["failures"] == ["a crash"]  # the interrupted seed is run again
    assert runner.study.get_trials()[0].state.name == "COMPLETE"  # the original stays as it was
    runner.close()


@pytest.mark.parametrize("kind", ["complete", "fail"])
def test_a_result_for_a_trial_another_driver_finished_is_dropped_not_fatal(tmp_path, kind):
    runner = _runner(tmp_path, n_trials=1)
    job = runner.next_trial()
    runner.study.tell(job.trial, state=runner.states.FAIL)  # as a driver that took this one for dead
    said: list[str] = []
    runner.say = said.append
    job.finish(RESULT if kind == "complete" else {A.FAILURE: "late"})
    assert said and "already finished elsewhere" in said[0]
    assert runner.study.get_trials()[0].state.name == "FAIL"
    runner.close()


def test_the_printed_front_names_an_undecided_member_and_counts_seeds_in_words(capsys):
    from types import SimpleNamespace as NS

    from skipsearch.cli import print_front

    objectives = [NS(name="dice"), NS(name="skip_memory_bytes")]
    cfg = NS(name="s", objectives=objectives, repeats=Repeats(seeds=3, confidence=0.9, runs=4))
    sure = NS(number=3, seeds=[[0.8, 2.0], [0.82, 2.0]], values=[0.81, 2.0], confidence=0.97, trial={A.SUMMARY: "a"})
    unsure = NS(number=7, seeds=[[0.7, 1.0]], values=[0.7, 1.0], confidence=0.52, trial={A.SUMMARY: "b"})
    print_front(NS(config=cfg, front=[sure, unsure]))
    out = capsys.readouterr().out
    assert "(2 seeds, on the front in 97%" in out and "(1 seed, on the front in 52%" in out
    (note,) = [line for line in out.splitlines() if "note:" in line]
    assert "#7 is undecided" in note and "runs: 4" in note
