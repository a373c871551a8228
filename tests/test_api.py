"""The public API: a small set of verbs, usable without the command line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from test_search import write_study

import skipsearch as ss

PACKAGE = Path(ss.__file__).parent


def test_public_verbs_are_exported():
    for name in ("profile", "evaluate", "Budget", "run_study", "load_results", "load", "list_objectives", "ArchSpec"):
        assert name in ss.__all__ and callable(getattr(ss, name))


def test_run_study_from_python(tmp_path):
    path = write_study(tmp_path, n_trials=2)
    lines: list[str] = []
    outcome = ss.run_study(path, backend="local", report=lines.append)
    assert outcome.finished and len(outcome.study.trials) == 2 and outcome.front
    assert lines[0].startswith("study 't'") and lines[-1].startswith("done:")
    results = ss.load_results(tmp_path / "t")
    assert len(results.frame) == 2 and results.objectives == ["dice", "skip_memory_bytes"]
    with pytest.raises(ss.UserError, match="trials: 0; allowed"):
        ss.run_study(path, trials=0, backend="local")


def test_profile_and_evaluate_verbs():
    spec = ss.preset("tiny-naf")
    p = ss.profile(spec, (3, 64, 64))
    assert p.skip_memory_bytes == p.skip_memory_analytic_bytes > 0
    r = ss.evaluate(spec, "shapes", ss.Budget(steps=2, batch=2, size=(32, 32)))
    assert 0 <= r["dice"] <= 1 and r["steps"] == 2


def test_objective_catalogue_drives_constraints():
    assert set(ss.list_objectives("spec")) == {
        "skip_memory_bytes",
        "skip_memory_me1",
        "peak_activation_bytes",
        "params",
        "macs",
        "flops",
        "train_peak_bytes",
    }
    assert ss.list_objectives("worker") == ["latency_ms"]
    assert {"dice", "psnr", "train_time_s"} <= set(ss.list_objectives("trained"))


def _user_error_texts(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", "") == "UserError":
            out.append(ast.unparse(node.exc))
    return out


def test_library_errors_never_name_command_line_options():
    flag = re.compile(r"(?<![\w-])--[a-z][\w-]*")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("cli.py", "serve.py"):  # the command line's own modules
            continue
        offenders += [f"{path.name}: {text}" for text in _user_error_texts(path) if flag.search(text)]
    assert not offenders, offenders
