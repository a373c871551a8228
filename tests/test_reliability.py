"""No user data lost, nothing stored touched by bad input, sizes checked before allocating."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from test_search import CORPUS, trials_of, write_study

import skipsearch
from skipsearch import ArchSpec, UserError
from skipsearch.cli import main


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A small finished study (3 trials); tests copy what they change."""
    tmp = tmp_path_factory.mktemp("rel")
    path = write_study(tmp, n_trials=3)
    assert main(["run", str(path), "--backend", "local"]) == 0
    return path


def test_train_out_never_deletes_a_users_folder(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work")
    args = ["train", "--preset", "tiny-naf", "--task", "shapes", "--steps", "1", "--size", "32", "--out", str(mine)]
    assert main(args) == 2
    assert "not empty and was not written by skipsearch" in one_error_line(capsys)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    run = tmp_path / "run"
    assert main([*args[:-1], str(run)]) == 0  # a new folder: written, with the marker
    (run / "notes.txt").write_text("kept")
    assert main([*args[:-1], str(run)]) == 0  # an earlier skipsearch output: replaced file by file
    assert (run / "notes.txt").read_text() == "kept" and (run / "model.safetensors").exists()


def test_export_refuses_an_existing_bundle_unless_forced(study, tmp_path, capsys):
    out = tmp_path / "exports"
    assert main(["export", str(study.parent / "t"), "--pareto", "--out", str(out)]) == 0
    bundle = next(p for p in out.iterdir() if not p.name.startswith("."))
    before = {p.name: sha(p) for p in bundle.iterdir()}
    (bundle / "README-mine.md").write_text("mine")
    # the same export again (re-running the quickstart's commands): kept as it is, exit 0
    assert main(["export", str(study.parent / "t"), "--pareto", "--out", str(out)]) == 0
    assert {p.name: sha(p) for p in bundle.iterdir() if p.name != "README-mine.md"} == before
    spec = (bundle / "spec.json").read_text()
    (bundle / "spec.json").write_text(spec.replace('"width"', '"width" ', 1))  # no longer this export's
    capsys.readouterr()
    assert main(["export", str(study.parent / "t"), "--pareto", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert bundle.name in line and "--force" in line
    assert main(["export", str(study.parent / "t"), "--pareto", "--out", str(out), "--force"]) == 0
    assert (bundle / "README-mine.md").read_text() == "mine" and sha(bundle / "model.onnx") == before["model.onnx"]
    assert (bundle / "spec.json").read_text() == spec


@pytest.mark.parametrize(
    "change, expect",
    [
        (
            {"objectives": "[dice, params]"},
            "objectives: the stored study 't' has objectives [dice (maximize), skip_memory_bytes",
        ),
        (
            {"task": "{name: photos-denoise}", "reference_input": "[3, 64, 64]"},
            "objectives: the stored study 't' has objectives [dice (maximize)",
        ),
    ],
)
def test_reopening_with_another_identity_is_refused_untouched(study, change, expect, capsys):
    db = study.parent / "t" / "study.db"
    before = sha(db)
    other = write_study(study.parent / "other", out=str(study.parent / "t"), **change)
    assert main(["run", str(other), "--backend", "local"]) == 2
    assert expect in one_error_line(capsys)
    assert sha(db) == before


def test_a_changed_dimension_kind_is_refused_untouched(study, tmp_path, capsys):
    db = study.parent / "t" / "study.db"
    before = sha(db)
    space = tmp_path / "space.yaml"
    space.write_text((CORPUS / "spaces" / "ok.yaml").read_text().replace("depth: {choice: [2, 3]}", "depth: {int: [2, 3]}"))
    other = write_study(tmp_path, space=space, out=str(study.parent / "t"))
    assert main(["run", str(other), "--backend", "local"]) == 2
    line = one_error_line(capsys)
    assert "search space dimensions" in line and "depth: choice" in line and "depth: int" in line
    assert sha(db) == before


@pytest.mark.parametrize("content", [b"", b"not a database at all", None])
def test_readers_never_write_into_a_foreign_study_db(tmp_path, content, capsys):
    import sqlite3

    folder = tmp_path / "s"
    folder.mkdir()
    db = folder / "study.db"
    if content is None:  # a foreign SQLite database
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE notes (t TEXT)")
        con.commit()
        con.close()
    else:
        db.write_bytes(content)
    before = sha(db)
    for command in (["results", str(folder)], ["dashboard", str(folder)], ["export", str(folder), "--pareto"]):
        assert main(command) == 2
        assert "study.db" in one_error_line(capsys)
    assert sha(db) == before and sorted(p.name for p in folder.iterdir()) == ["study.db"]


def test_dashboard_results_export_take_study(study, capsys):
    folder = study.parent / "t"
    for command in (["results", str(folder)], ["dashboard", str(folder)], ["export", str(folder), "--pareto"]):
        assert main([*command, "--study", "nope"]) == 2
        assert "no study 'nope'; allowed: t" in one_error_line(capsys)


def test_sizes_are_checked_before_allocating(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["profile", "--preset", "tiny-naf", "--input", "3x40000x40000", "--device", "cpu"]) == 2
    assert "needs about" in one_error_line(capsys)
    args = ["train", "--preset", "tiny-naf", "--task", "shapes", "--size", "8000x8000", "--batch", "64"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "budget size 8000x8000, batch 64: needs about" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "spec.json").write_text(ArchSpec(width=100_000).to_json())
    (bundle / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="the weights of this architecture: needs about"):
        skipsearch.load(bundle)
    assert time.perf_counter() - start < 60  # refused from the prediction, never attempted


def test_yaml_alias_bomb_and_duplicate_keys_are_refused(tmp_path, capsys):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: t\n")
    assert main(["run", str(bomb), "--backend", "local"]) == 2
    assert "once aliases are expanded" in one_error_line(capsys)
    twice = write_study(tmp_path / "twice")
    twice.write_text(twice.read_text() + "n_trials: 7\n")
    assert main(["run", str(twice), "--backend", "local"]) == 2
    assert "duplicate key 'n_trials'" in one_error_line(capsys)


def test_values_that_would_fail_after_opening_are_refused_first(tmp_path, capsys):
    cases = [
        ({"reference_input": "[3, 0, 0]"}, "reference_input: [3, 0, 0]"),
        ({"budget": "{steps: 2, betas: [0.9]}"}, "budget betas: [0.9]"),
        ({"budget": "{lr: abc}"}, "budget lr: 'abc' is invalid; allowed: a positive number"),
        ({"task": "{name: shapes, train_samples: 0}"}, "option train_samples: 0; allowed: an integer >= 1"),
        ({"objectives": "dice"}, "objectives: 'dice'; allowed: a non-empty list"),
        ({"sampler": "{type: nsga2, population: 1}"}, "sampler.population: 1; allowed: an integer >= 2"),
        ({"sampler": "{type: tpe, foo: 1}"}, "sampler.foo: not an option of the tpe sampler"),
        ({"constraints": "[{objective: skip_memory_bytes, max: 8 Mb}]"}, "'8 Mb' is not an amount; allowed: a number or one"),
        ({"constraints": "[{objective: skip_memory_bytes, max: .nan}]"}, "nan is not an amount"),
        ({"constraints": "[{objective: skip_memory_bytes, max: 1.2.3 MiB}]"}, "'1.2.3 MiB' is not an amount"),
        ({"objectives": "[dice, dice]"}, "'dice' is listed twice"),
        ({"resources": "{cpus: -1}"}, "resources.cpus: -1; allowed: a number > 0"),
        ({"name": "../escaped"}, "name: '../escaped'; allowed: a file name"),
        ({"name": "''"}, "name: ''; allowed: a file name"),
        ({"name": "null"}, "name: None; allowed: a file name"),
    ]
    for i, (change, expect) in enumerate(cases):
        path = write_study(tmp_path / str(i), **change)
        assert main(["run", str(path), "--backend", "local"]) == 2, change
        assert expect in one_error_line(capsys), change
        assert sorted(p.name for p in path.parent.iterdir()) == ["study.yaml"], change  # nothing created


@pytest.mark.parametrize(
    "params, expect",
    [
        ("depth: 9", "no point of the space is a valid architecture: field 'depth': invalid value 9"),
        ("block.type: bogus", "params.block.type: 'bogus' is not registered"),
        ("width: {int: [0, 8], log: true}", "low 0 with log: true"),
        ("width: {int: [8, 64], step: eight}", "params.width.step: 'eight'; allowed: a positive integer"),
        ("width: {int: [8, 64], step: 0}", "params.width.step: 0"),
    ],
)
def test_space_values_that_fail_every_trial_are_refused_at_load(tmp_path, params, expect, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(f"params:\n  {params}\n")
    path = write_study(tmp_path, space=space)
    assert main(["run", str(path), "--backend", "local"]) == 2
    assert expect in one_error_line(capsys)
    assert not (tmp_path / "t").exists()


def test_internal_errors_are_one_line_with_a_way_to_see_more(monkeypatch, capsys):
    import skipsearch.cli as cli

    def boom(args):
        raise ZeroDivisionError("an internal bug")

    monkeypatch.setattr(cli, "cmd_presets", boom)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with(parser(), "presets", boom))
    assert main(["presets"]) == 1
    line = one_error_line(capsys)
    assert "internal error: ZeroDivisionError: an internal bug" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "presets"])


def _with(parser, command: str, func):
    for action in parser._subparsers._group_actions:
        action.choices[command].set_defaults(func=func)
    return parser


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["dashboard", "x", "--port", "abc"])
    assert info.value.code == 2
    assert "argument --port: invalid int value: 'abc'" in one_error_line(capsys)
    assert main(["dashboard", "x", "--serve", "--port", "99999"]) == 2
    assert "--port: 99999; allowed: 1-65535" in one_error_line(capsys)


def test_results_out_into_a_missing_folder(study, tmp_path, capsys):
    assert main(["results", str(study.parent / "t"), "--out", str(tmp_path / "nope" / "r.csv")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main(["results", str(study.parent / "t"), "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())) == len(trials_of(study))
