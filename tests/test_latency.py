"""latency_ms: measured on the worker before training; a latency constraint prunes
without training."""

from __future__ import annotations

import pytest
import torch
from test_search import trials_of, write_study

from skipsearch import preset
from skipsearch.cli import main
from skipsearch.costs.latency import latency
from skipsearch.objectives import OBJECTIVES


def test_latency_is_a_median_with_its_spread():
    lat = latency(preset("tiny-naf"), (3, 32, 32), repeats=5)
    assert lat.runs == 5 and lat.device == "cpu" and lat.threads == torch.get_num_threads()
    assert lat.median_ms > 0 and lat.iqr_ms >= 0
    assert set(lat.to_dict()) == {"latency_ms", "latency_ms_iqr", "latency_runs", "latency_device", "latency_threads"}
    with pytest.raises(ValueError, match="at least 3"):
        latency(preset("tiny-naf"), (3, 32, 32), repeats=2)
    assert OBJECTIVES.get("latency_ms").when == "worker" and OBJECTIVES.get("latency_ms").before_training


def test_a_latency_constraint_prunes_on_the_worker_without_training(tmp_path):
    path = write_study(tmp_path, n_trials=3, constraints="[{objective: latency_ms, max: 0.0001}]")
    assert main(["run", str(path), "--backend", "local"]) == 0
    trials = [t for t in trials_of(path) if t.user_attrs.get("duplicate_of") is None]
    assert trials and all(t.state.name == "PRUNED" for t in trials)
    for t in trials:
        assert t.user_attrs["infeasible"].startswith("latency_ms = ") and "needs <= 0.0001 ms" in t.user_attrs["infeasible"]
        assert t.user_attrs["latency_ms"] > 0 and t.user_attrs["latency_runs"] == 15
        assert "weights" not in t.user_attrs and "dice" not in t.user_attrs  # never trained


def test_latency_as_an_objective(tmp_path):
    path = write_study(tmp_path, n_trials=2, objectives="[dice, latency_ms]")
    assert main(["run", str(path), "--backend", "local"]) == 0
    done = [t for t in trials_of(path) if t.state.name == "COMPLETE"]
    assert done and all(t.values[1] == t.user_attrs["latency_ms"] and "latency_ms_iqr" in t.user_attrs for t in done)
    assert main(["export", str(tmp_path / "t"), "--trial", str(done[0].number), "--out", str(tmp_path / "x")]) == 0
    (card,) = (tmp_path / "x").glob("*/MODEL_CARD.md")
    assert f"median {done[0].user_attrs['latency_ms']:.2f} ms" in card.read_text()


def test_the_tabular_backend_refuses_latency(tmp_path, capsys):
    from test_tabular import study_with_table

    path = study_with_table(tmp_path, objectives="[dice, latency_ms]")
    assert main(["run", str(path), "--backend", "tabular"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latency_ms is measured on a trial's device" in err[0]
    assert not (tmp_path / "t" / "study.db").exists()


@pytest.mark.parametrize(
    "name, bound", [("latency_ms", "0"), ("latency_ms", "-1"), ("latency_ms", "0 ms"), ("train_peak_bytes", "0 MiB")]
)
def test_a_zero_or_negative_latency_or_memory_bound_is_refused(tmp_path, capsys, name, bound):
    path = write_study(tmp_path, constraints=f"[{{objective: {name}, max: {bound}}}]")
    assert main(["run", str(path), "--backend", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"constraints.{name}" in err[0], err
    assert not (tmp_path / "t").exists()
