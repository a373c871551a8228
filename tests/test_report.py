"""Results tables, the dashboard page (escaping, contents), export bundles and load()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_search import CORPUS, write_study

import skipsearch
from skipsearch import UserError
from skipsearch.cli import main
from skipsearch.dashboard import build_page
from skipsearch.results import load_results

XSS = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("study")
    space = tmp / "evil-space.yaml"  # user text reaches the page through the space's name
    space.write_text((CORPUS / "spaces" / "ok.yaml").read_text().replace("name: ok", f'name: "evil{XSS}"'))
    path = write_study(
        tmp,
        name="evil",
        space=space,
        out="out",
        n_trials=5,
        seed_presets="[tiny-naf]",
        constraints="[{objective: skip_memory_bytes, max: 120 KiB}]",
        description=f'"notes {XSS}"',
    )
    assert main(["run", str(path), "--backend", "local"]) == 0
    return tmp / "out"


def test_results_table(study_dir, capsys):
    r = load_results(study_dir)
    f = r.frame
    assert len(f) == 5 and {"number", "state", "dice", "skip_memory_bytes", "depth", "block.type", "skip.type", "pareto"} <= set(
        f
    )
    assert f.loc[f["state"] == "PRUNED", "infeasible"].str.contains("needs <=").all()
    assert f["pareto"].sum() >= 1 and not f.loc[~f["feasible"], "pareto"].any()
    assert main(["results", str(study_dir), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and rows[0]["number"] == 0
    assert main(["results", str(study_dir), "--format", "parquet"]) == 0
    assert len(pd.read_parquet(study_dir / "results.parquet")) == 5


def test_dashboard_page_is_escaped_and_complete(study_dir):
    page = build_page(load_results(study_dir))
    assert XSS not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    for div in ("fig-pareto", "fig-hypervolume", "fig-timeline", "fig-parallel", "pareto-table", "skip-table"):
        assert f'id="{div}"' in page
    assert "infeasible (not trained)" in page and "seed presets" in page or "infeasible" in page
    assert "https://cdn" not in page.split("<script>", 2)[1][:200]  # plotly.js embedded, not fetched


def test_dashboard_command_writes_the_file(study_dir, capsys):
    assert main(["dashboard", str(study_dir)]) == 0
    assert (study_dir / "dashboard.html").stat().st_size > 1_000_000


def test_export_pareto_bundles_and_load(study_dir, tmp_path, capsys):
    assert main(["export", str(study_dir), "--pareto", "--out", str(tmp_path)]) == 0
    bundles = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert bundles
    for b in bundles:
        assert {p.name for p in b.iterdir()} >= {
            "spec.json",
            "model.safetensors",
            "model.onnx",
            "model.ts",
            "model.py",
            "MODEL_CARD.md",
        }
        checks = json.loads((b / "checks.json").read_text())
        assert len(checks) == 4 and all(v <= 1e-4 for v in checks.values())
        card = (b / "MODEL_CARD.md").read_text()
        assert "skip memory" in card and "Export checks" in card and "How the search found it" in card
        model = skipsearch.load(b)
        spec = skipsearch.ArchSpec.from_json((b / "spec.json").read_text())
        assert model.spec == spec and b.name == spec.arch_id
        with torch.no_grad():
            assert model(torch.randn(1, 3, 33, 47)).shape == (1, spec.out_channels, 33, 47)


def test_load_needs_no_pickle(study_dir, tmp_path, monkeypatch):
    assert main(["export", str(study_dir), "--pareto", "--out", str(tmp_path)]) == 0
    bundle = next(p for p in tmp_path.iterdir() if not p.name.startswith("."))
    import pickle

    def refuse(*a, **k):
        raise AssertionError("unpickling during load()")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    skipsearch.load(bundle)


def test_export_errors(study_dir, tmp_path, capsys):
    pruned = int(load_results(study_dir).frame.query("state == 'PRUNED'")["number"].iloc[0])
    cases = [
        (["export", str(study_dir), "--trial", str(pruned)], f"trial {pruned} is PRUNED, not complete"),
        (["export", str(study_dir), "--trial", "99"], "99 is not a trial"),
        (["export", str(tmp_path / "nope"), "--pareto"], "study folder not found"),
        (["export", str(tmp_path), "--pareto"], "no study.db in this folder"),
        (["results", str(study_dir), "--format", "xml"], "--format: 'xml'"),
    ]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (args, err)


def test_export_missing_weights(study_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy)
    r = load_results(copy)
    number = int(r.front["number"].iloc[0])
    weights = Path(next(t for t in r.trials if t.number == number).user_attrs["weights"])
    moved = weights.with_suffix(".moved")
    weights.rename(moved)
    try:
        assert main(["export", str(copy), "--trial", str(number)]) == 2
        assert "has no weights on disk" in capsys.readouterr().err
    finally:
        moved.rename(weights)


def test_no_feasible_front(tmp_path, capsys):
    path = write_study(tmp_path, n_trials=2, constraints="[{objective: params, max: 10}]")
    assert main(["run", str(path), "--backend", "local"]) == 0
    assert main(["export", str(tmp_path / "t"), "--pareto"]) == 2
    assert "no feasible complete trial" in capsys.readouterr().err


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="no spec.json"):
        skipsearch.load(tmp_path)


def test_parallel_coordinates_with_conditional_parameters(study_dir):
    from skipsearch.dashboard import parallel_figure

    r = load_results(study_dir)
    r.frame = r.frame.iloc[:2].copy()
    r.frame["state"] = "COMPLETE"
    r.frame["skip.target"] = ["min", None]  # a conditional parameter: present for one trial only
    dims = {d["label"]: d for d in parallel_figure(r).data[0].dimensions}
    assert list(dims["skip.target"]["ticktext"]) == ["-", "min"]


def test_fast_sqlite_reader_matches_optuna(study_dir):
    import optuna

    from skipsearch.results import load_stored_study
    from skipsearch.search.storage import read_trials

    stored = load_stored_study(study_dir)
    fast = read_trials(study_dir / "study.db", stored.study_name)
    study = optuna.load_study(study_name=stored.study_name, storage=f"sqlite:///{study_dir / 'study.db'}")
    slow = sorted(study.get_trials(), key=lambda t: t.number)
    assert stored.directions == [d.name.lower() for d in study.directions] and stored.user_attrs == study.user_attrs
    assert [(t.number, t.state, t.values, t.user_attrs) for t in fast] == [
        (t.number, t.state.name, t.values, t.user_attrs) for t in slow
    ]
    assert read_trials(study_dir / "study.db", "no such study") is None


def test_embedded_summary_json_parses_and_cannot_close_its_script(study_dir):
    import re

    from skipsearch.dashboard import script_json

    tricky = {"name": f"</script>{XSS}&amp;"}
    text = script_json(tricky)
    assert "</" not in text and "<" not in text and json.loads(text) == tricky
    page = build_page(load_results(study_dir))
    body = re.search(r"<script type='application/json' id='data'>(.*?)</script>", page, re.S).group(1)
    assert json.loads(body)["study"] == "evil"


def test_dashboard_of_empty_and_all_failed_studies(tmp_path, capsys):
    from skipsearch.search.config import load_study
    from skipsearch.search.opening import open_study

    empty = write_study(tmp_path / "empty", n_trials=2)
    open_study(load_study(empty))  # created, no trial yet: `--serve` must be able to start beside it
    assert main(["dashboard", str(tmp_path / "empty" / "t")]) == 0
    assert "No trials yet" in (tmp_path / "empty" / "t" / "dashboard.html").read_text()
    failed = write_study(tmp_path / "failed", n_trials=2, constraints="[{objective: params, max: 10}]")
    assert main(["run", str(failed), "--backend", "local"]) == 0
    assert main(["dashboard", str(tmp_path / "failed" / "t")]) == 0
    assert "No complete trial yet (2 trials)" in (tmp_path / "failed" / "t" / "dashboard.html").read_text()


def test_dashboard_of_a_study_with_trials_stopped_at_rungs_and_infeasible_ones(tmp_path):
    """An infeasible trial has no rung while others do: pandas gives it NaN there."""
    from test_tabular import study_with_table

    path = study_with_table(
        tmp_path,
        fidelity="{type: asha, min_steps: 2, eta: 2}",
        constraints="[{objective: skip_memory_bytes, max: 1 B}]",  # every skip but `none` is infeasible
    )
    assert main(["run", str(path), "--backend", "tabular"]) == 0
    r = load_results(tmp_path / "t")
    states = set(r.frame["state"])
    assert {"COMPLETE", "PRUNED"} <= states and r.frame["rung"].notna().any() and r.frame["infeasible"].notna().any()
    page = build_page(r)
    assert "stopped at rung" in page and "infeasible: skip_memory_bytes" in page and "nan" not in page.lower().split("<script")[0]


def test_export_checks_allow_float32_rounding_relative_to_the_output(tmp_path):
    """A trained network's logits reach tens; the formats' float32 kernels then differ by
    more than 1e-4 in absolute terms while agreeing to ~1e-6 relative."""
    from skipsearch.export import TOLERANCE, write_formats

    model = skipsearch.build_model(skipsearch.preset("tiny-naf-sdi")).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # large activations, as after training
    from skipsearch.train import _save

    folder = _save(tmp_path / "bundle", model, model.spec, {}).parent
    checks, limit = write_formats(skipsearch.load(folder), folder, (32, 32))
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        scale = float(model(x).abs().max())
    assert scale > 10 and limit == pytest.approx(TOLERANCE * scale)
    assert all(v <= limit for v in checks.values()), checks
    assert max(checks.values()) <= 1e-5 * scale  # relative agreement far inside the limit
