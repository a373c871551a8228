"""The tabular backend: trials answered from a table, checked before the study is touched."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from test_search import CORPUS, trials_of, write_study

from skipsearch.cli import main
from skipsearch.search.config import load_study
from skipsearch.search.tabular import Table, enumerate_space, seed_for

STEPS = [2, 4, 8]


def fake_table(path: Path, study: Path, skip: str | None = None) -> Path:
    """A table for the study's space with made-up but structured metrics."""
    cfg = load_study(study)
    task = cfg.make_task()
    entries = []
    for spec in enumerate_space(cfg.space, task):
        if spec.skip.type == skip:
            continue
        rng = np.random.default_rng(int(spec.arch_id, 16) % 2**32)
        quality = rng.uniform(0.3, 0.9)
        runs = {}
        for seed in (0, 1, 2):
            noise = rng.normal(0, 0.03)
            at = {str(s): {"dice": round(quality * s / 8 + noise, 5), "iou": 0.5, "mdice": 0.6, "miou": 0.4} for s in STEPS}
            runs[str(seed)] = {"curve": [[s, at[str(s)]["dice"]] for s in STEPS], "metrics_at": at, "train_time_s": 4.0}
        entries.append({"arch_id": spec.arch_id, "spec": spec.to_json(indent=None), "summary": spec.summary(), "runs": runs})
    data = {
        "format": 1,
        "task": task.describe(),
        "budget": {k: v for k, v in cfg.budget.to_dict().items() if k != "seed"},
        "rung_steps": STEPS,
        "seeds": [0, 1, 2],
        "entries": entries,
    }
    with gzip.open(path, "wt") as f:
        json.dump(data, f)
    return path


def study_with_table(tmp_path: Path, skip: str | None = None, **fields) -> Path:
    fields = {"budget": "{steps: 8, batch: 2, size: [32, 32]}", "n_trials": 12, **fields}
    path = write_study(tmp_path, **fields)
    table = fake_table(tmp_path / "table.json.gz", path, skip)
    path.write_text(path.read_text() + f"table: {table.name}\n")
    return path


def test_tabular_study_answers_from_the_table(tmp_path):
    path = study_with_table(tmp_path, fidelity="{type: asha, min_steps: 2, eta: 2}")
    assert main(["run", str(path), "--backend", "tabular"]) == 0  # its speed: BENCHMARKS.md, not a test
    table = Table.load(tmp_path / "table.json.gz")
    trials = trials_of(path)
    assert all(t.state.is_finished() for t in trials) and {t.user_attrs["slot"] for t in trials} == set(range(12))
    stopped = [t for t in trials if t.state.name == "PRUNED"]
    assert stopped, "with eta 2 some trials stop at a rung"
    for t in trials:
        if t.state.name == "COMPLETE" and t.user_attrs.get("duplicate_of") is None:
            seed = seed_for(0, t.user_attrs["slot"], table.seeds)  # drawn by slot: the same after a resume
            assert t.values[0] == table.metrics_at(t.user_attrs["arch_id"], seed, 8)["dice"]


def test_a_table_that_lacks_an_architecture_is_refused_untouched(tmp_path, capsys):
    path = study_with_table(tmp_path, skip="plain")
    assert main(["run", str(path), "--backend", "tabular"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "which the table lacks" in err[0]
    assert not (tmp_path / "t").exists()


def test_a_table_of_another_budget_is_refused(tmp_path, capsys):
    path = study_with_table(tmp_path)
    path.write_text(path.read_text().replace("steps: 8", "steps: 9"))
    assert main(["run", str(path), "--backend", "tabular"]) == 2
    assert "budget.steps 9 differs from the table's 8" in capsys.readouterr().err


def test_corrupt_table(tmp_path, capsys):
    path = study_with_table(tmp_path)
    (tmp_path / "table.json.gz").write_bytes(b"not gzip")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["run", str(path), "--backend", "tabular"]) == 2
    assert "not a tabular benchmark file" in capsys.readouterr().err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("space", ["ok.yaml"])
def test_enumerate_space_follows_conditions(space):
    from skipsearch.search.space import SearchSpace

    specs = enumerate_space(SearchSpace.load(CORPUS / "spaces" / space), None)
    # depth {2, 3} x block {naf, cmrf(n=2)} x skip {none, plain}
    assert len(specs) == 8 and len({s.arch_id for s in specs}) == 8


def test_a_table_that_expands_without_end_is_refused(tmp_path, monkeypatch, capsys):
    import skipsearch.search.tabular as tabular

    path = study_with_table(tmp_path)
    monkeypatch.setattr(tabular, "MAX_TABLE_BYTES", 1000)  # the real bound is 256 MiB; the shape is the same
    with gzip.open(tmp_path / "table.json.gz", "wb") as f:
        f.write(b" " * 5000)
    assert main(["run", str(path), "--backend", "tabular"]) == 2
    assert "more than 1,000 bytes once decompressed" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_a_seed_preset_the_table_lacks_is_refused(tmp_path, capsys):
    path = study_with_table(tmp_path, seed_presets="[tiny-cmrf]")  # width 16, N = 4: not in the test space
    assert main(["run", str(path), "--backend", "tabular"]) == 2
    assert "seed_presets: 'tiny-cmrf' is not in the table" in capsys.readouterr().err
