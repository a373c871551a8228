"""The bad-input corpus (tests/corpus): every input a user can get wrong is refused the same way.

Each case goes through `skipsearch.cli.main` and must exit with status 2 and print exactly
one line on stderr, without a traceback, holding the expected text and naming the file,
field or option at fault. Nothing may be created before the refusal, and the shared
finished study (and any target built for a case) must be byte for byte unchanged.

Groups (each case is data under tests/corpus/<group>):
  studies   study files (`# expect:` first line; extra/cases.yaml for files that cannot
            carry one), run with `skipsearch run`
  spaces    search spaces, loaded with SearchSpace.load and run from a valid study
  specs     spec JSON for `skipsearch profile --spec` and `skipsearch train --spec`
  cli       command lines
  datasets  folder datasets built from recipes, for `train --data` or a study's task
  targets   dashboard / results / export on bad folders, databases, trials and outputs
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_search import write_study

from skipsearch import SpecError, UserError
from skipsearch.cli import main
from skipsearch.search.space import SearchSpace
from skipsearch.tasks import make_task
from skipsearch.testing import small_spec

CORPUS = Path(__file__).parent / "corpus"
OK_SPACE = "spaces/ok.yaml"


# -- the cases ------------------------------------------------------------------------------
def _first_line_expect(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), path
    return first[len("# expect: ") :]


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _file_cases(group: str) -> list[dict[str, Any]]:
    folder = CORPUS / group
    cases = [
        {"file": p.name, "expect": _first_line_expect(p)}
        for p in sorted(folder.glob("*.yaml"))
        if f"{group}/{p.name}" != OK_SPACE
    ]
    for entry in _load(folder / "extra" / "cases.yaml"):
        cases.append({**entry, "file": f"extra/{entry['file']}"})
    return cases


def _spec_cases() -> list[dict[str, Any]]:
    cases = []
    for name, entry in _load(CORPUS / "specs" / "cases.yaml").items():
        entry = {"expect": entry} if isinstance(entry, str) else dict(entry)
        for command in entry.get("commands", ["profile", "train"]):
            cases.append({**entry, "file": name, "command": command})
    return cases


CASES: dict[str, list[dict[str, Any]]] = {
    "studies": _file_cases("studies"),
    "spaces": _file_cases("spaces"),
    "specs": _spec_cases(),
    "cli": _load(CORPUS / "cli" / "cases.yaml"),
    "datasets": _load(CORPUS / "datasets" / "cases.yaml"),
    "targets": _load(CORPUS / "targets" / "cases.yaml"),
}


def _ids(group: str) -> list[str]:
    key = {"studies": "file", "spaces": "file"}.get(group, "id")
    if group == "specs":
        return [f"specs/{c['file']}:{c['command']}" for c in CASES[group]]
    return [f"{group}/{c[key]}" for c in CASES[group]]


def test_the_corpus_is_large_and_every_case_distinct():
    inputs = {g: len({c.get("file", c.get("id")) for c in cases}) for g, cases in CASES.items()}
    assert sum(inputs.values()) >= 150 and min(inputs.values()) >= 20, inputs
    for group in CASES:
        assert len(set(_ids(group))) == len(_ids(group)), group


# -- building files from recipes -----------------------------------------------------------------
def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header declares width x height grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _picture(path: Path, size: list[int], mask: bool, fg: int) -> bytes:
    from PIL import Image

    w, h = size
    if mask:
        arr = np.zeros((h, w), dtype=np.uint8)
        arr[h // 4 : max(h // 4 + 1, 3 * h // 4), w // 4 : max(w // 4 + 1, 3 * w // 4)] = fg
    else:
        arr = np.random.default_rng(len(path.name) + w * h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), "PNG")
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _nifti_bytes(recipe: dict[str, Any]) -> bytes:
    """A gzipped NIfTI volume of recipe["nifti"] = [D, H, W] (or four sides): noise, or with
    `fg` a label, 0 with a block of fg; `nan` puts a NaN in it."""
    import gzip

    import nibabel

    shape = recipe["nifti"]
    if "fg" in recipe:
        arr = np.zeros(shape, dtype=np.float32 if isinstance(recipe["fg"], float) else np.uint8)
        arr[tuple(slice(s // 4, max(s // 4 + 1, 3 * s // 4)) for s in shape)] = recipe["fg"]
    else:
        arr = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    if recipe.get("nan"):
        arr.flat[0] = np.nan
    img = nibabel.Nifti1Image(np.ascontiguousarray(arr.T), np.eye(4))  # D, H, W -> x, y, z
    return gzip.compress(img.to_bytes(), mtime=0)


def make(path: Path, recipe: dict[str, Any]) -> None:
    """Write one file (or folder, or link) of a recipe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if recipe.get("folder"):
        path.mkdir(parents=True, exist_ok=True)
    elif "symlink" in recipe:
        path.symlink_to(recipe["symlink"])
    elif "text" in recipe:
        path.write_text(recipe["text"] * recipe.get("repeat", 1), encoding="utf-8")
    elif "hex" in recipe:
        path.write_bytes(bytes.fromhex(recipe["hex"]))
    elif recipe.get("empty"):
        path.write_bytes(b"")
    elif "bomb" in recipe:
        path.write_bytes(png_declaring(*recipe["bomb"]))
    elif "nifti" in recipe:
        data = _nifti_bytes(recipe)
        path.write_bytes(data[: recipe["truncate"]] if "truncate" in recipe else data)
    elif "image" in recipe or "mask" in recipe:
        data = _picture(path, recipe.get("image") or recipe["mask"], "mask" in recipe, recipe.get("fg", 255))
        path.write_bytes(data[: recipe["truncate"]] if "truncate" in recipe else data)
    else:
        raise AssertionError(f"unknown recipe {recipe!r}")


# -- checks -------------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its sha256 (links and folders by name)."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink() or not p.is_file():
                out[rel] = "link" if p.is_symlink() else "folder"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def call(argv: list[Any], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's usage errors
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def refused(result: tuple[int, str, str], expect: str, names: list[str]) -> str:
    rc, out, err = result
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit {rc}: {err}"
    assert len(lines) == 1, err
    line = lines[0]
    assert expect in line, f"expected {expect!r} in {line!r}"
    for name in names:
        assert name in line, f"{name!r} not named in {line!r}"
    assert out == "", out
    return line


# -- the shared study and the working copy of the corpus ---------------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict[str, Any]:
    """A small finished study (local backend), plus a failed and a pruned trial."""
    import optuna

    tmp = tmp_path_factory.mktemp("shared")
    path = write_study(tmp, n_trials=2)
    assert main(["run", str(path), "--backend", "local"]) == 0
    folder = tmp / "t"
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{folder / 'study.db'}")
    trial = study.ask()
    trial.set_user_attr("failure", "TrainingError: loss became nan at step 1 (lr 0.001)")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    trial = study.ask()
    trial.set_user_attr("infeasible", "skip_memory_bytes 3.1 MiB > max 1 MiB")
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    done = next(t for t in study.trials if t.state.name == "COMPLETE" and t.user_attrs.get("weights"))
    states = {t.state.name: t.number for t in study.trials}
    return {
        "yaml": path,
        "folder": folder,
        "fail": states["FAIL"],
        "pruned": states["PRUNED"],
        "done": done.number,
        "arch0": done.user_attrs["arch_id"],
    }


@pytest.fixture(scope="module")
def work(tmp_path_factory, shared) -> Path:
    """A copy of the corpus with the generated files made; {study} names the shared study."""
    root = tmp_path_factory.mktemp("corpus") / "corpus"
    shutil.copytree(CORPUS, root, symlinks=True)
    for p in (root / "studies").glob("*.yaml"):
        text = p.read_text(encoding="utf-8")
        if "{study}" in text:
            p.write_text(text.replace("{study}", str(shared["folder"])), encoding="utf-8")
    for group in ("studies", "spaces", "specs"):
        for case in CASES[group]:
            if "make" in case:
                make(root / group / case["file"], case["make"])
    return root


@pytest.fixture
def untouched(shared):
    """The shared study is byte for byte the same after the case."""
    before, yaml_text = snapshot(shared["folder"]), shared["yaml"].read_text()
    yield
    assert snapshot(shared["folder"]) == before
    assert shared["yaml"].read_text() == yaml_text


# -- the groups ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES["studies"], ids=_ids("studies"))
def test_studies(case, work, untouched, capsys):
    path = work / "studies" / case["file"]
    before = snapshot(work)
    refused(call(["run", path, "--backend", "local"], capsys), case["expect"], [Path(case["file"]).name])
    assert snapshot(work) == before  # nothing created beside the study file


@pytest.mark.parametrize("case", CASES["spaces"], ids=_ids("spaces"))
def test_spaces(case, work, untouched, tmp_path, capsys):
    path = work / "spaces" / case["file"]
    if case.get("probe"):
        space = SearchSpace.load(path)
        with pytest.raises(SpecError) as info:
            space.probe(make_task("shapes", train_samples=4, val_samples=2))
        assert case["expect"].split("valid architecture: ")[-1] in str(info.value)
    else:
        with pytest.raises(UserError) as info:
            SearchSpace.load(path)
        assert case["expect"] in str(info.value) and path.name in str(info.value)
    study = write_study(tmp_path, space=path, n_trials=1)
    refused(call(["run", study, "--backend", "local"], capsys), case["expect"], [path.name, study.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


SPEC_COMMANDS = {
    "profile": ["profile"],
    "profile-cpu": ["profile", "--device", "cpu"],
    "train": ["train", "--task", "shapes", "--steps", "1", "--size", "32", "--batch", "2"],
}


@pytest.mark.parametrize("case", CASES["specs"], ids=_ids("specs"))
def test_specs(case, work, untouched, tmp_path, capsys):
    path = work / "specs" / case["file"]
    argv = [*SPEC_COMMANDS[case["command"]], "--spec", path]
    if case["command"] == "train":
        argv += ["--out", tmp_path / "o"]
    refused(call(argv, capsys), case["expect"], [path.name])
    assert list(tmp_path.iterdir()) == []


def _fill(text: str, values: dict[str, Any]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


@pytest.fixture
def busy_port():
    """A port of 127.0.0.1 that something listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("case", CASES["cli"], ids=_ids("cli"))
def test_cli(case, work, shared, untouched, tmp_path, capsys, monkeypatch, request):
    (tmp_path / "file.txt").write_text("a file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    values = {
        "study": shared["folder"],
        "study_yaml": shared["yaml"],
        "tmp": tmp_path,
        "file": tmp_path / "file.txt",
        "mine": tmp_path / "mine",
        "corpus": work,
        "ok_space": work / OK_SPACE,
    }
    if any("{busy_port}" in a for a in case["argv"]):
        values["busy_port"] = request.getfixturevalue("busy_port")
    for rel, recipe in (case.get("files") or {}).items():
        make(tmp_path / rel, {k: _fill(v, values) if isinstance(v, str) else v for k, v in recipe.items()})
    if "stdin" in case:
        monkeypatch.setattr("sys.stdin", io.StringIO(case["stdin"]))
    before = snapshot(tmp_path)
    argv = [_fill(a, values) for a in case["argv"]]
    refused(call(argv, capsys), _fill(case["expect"], values), [_fill(n, values) for n in case["names"]])
    assert snapshot(tmp_path) == before


NNUNET_JSON = {"channel_names": {"0": "MR"}, "labels": {"background": 0, "lesion": 1}, "numTraining": 5}


def build_dataset(root: Path, case: dict[str, Any]) -> None:
    default = {"folder-seg": "seg", "nnunet-raw": "nnunet"}.get(case["task"], "restore")
    base = case.get("base", default)
    root.mkdir(parents=True)
    stems = "abcd"
    if base in ("nnunet", "nnunet2d"):  # five cases, one channel, two classes
        volume = base == "nnunet"
        ending = ".nii.gz" if volume else ".png"
        for k in range(5):
            if volume:
                make(root / "imagesTr" / f"c{k}_0000{ending}", {"nifti": [12, 16, 16]})
                make(root / "labelsTr" / f"c{k}{ending}", {"nifti": [12, 16, 16], "fg": 1})
            else:
                make(root / "imagesTr" / f"c{k}_0000{ending}", {"mask": [24, 20], "fg": 200})
                make(root / "labelsTr" / f"c{k}{ending}", {"mask": [24, 20], "fg": 1})
        (root / "dataset.json").write_text(json.dumps({**NNUNET_JSON, "file_ending": ending}))
    elif base == "seg":
        for s in stems:
            make(root / "images" / f"{s}.png", {"image": [24, 20]})
            make(root / "masks" / f"{s}.png", {"mask": [24, 20]})
    elif base == "restore":
        for s in stems:
            make(root / "input" / f"{s}.png", {"image": [24, 20]})
            make(root / "target" / f"{s}.png", {"image": [24, 20]})
    for rel in case.get("remove", []):
        p = root / rel
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    for rel, recipe in (case.get("files") or {}).items():
        make(root / rel, recipe)


@pytest.mark.parametrize("case", CASES["datasets"], ids=_ids("datasets"))
def test_datasets(case, untouched, tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    build_dataset(root, case)
    monkeypatch.setenv("SKIPSEARCH_CACHE", str(tmp_path / "cache"))  # nnunet-raw's decoded cases: never written
    spec = ["--preset", "tiny-naf"]
    if case["task"] == "nnunet-raw" and case.get("base", "nnunet") == "nnunet" and not case.get("spec_2d"):
        spec = ["--spec", tmp_path / "tiny3d.json"]
        (tmp_path / "tiny3d.json").write_text(small_spec("conv", "plain", 2, spatial_dims=3).to_json())
    before = snapshot(tmp_path)
    if case.get("via", "train") == "train":
        argv = ["train", *spec, "--task", case["task"], "--data", root, "--steps", "1", "--size", "32"]
        result = call([*argv, "--batch", "2", "--out", tmp_path / "o"], capsys)
    else:
        options = dict(case.get("options") or {})
        for key in ("split", "cache"):
            if key in options:
                options[key] = str(root / options[key])
        task = json.dumps({"name": case["task"], "data": str(root), **options})
        study = write_study(tmp_path / "study", task=task, n_trials=1)
        before = snapshot(tmp_path)
        result = call(["run", study, "--backend", "local"], capsys)
    refused(result, case["expect"], case["names"])
    assert snapshot(tmp_path) == before  # the dataset as it was, no output folder


def _setup_target(target: Path, steps: list[dict[str, Any]], shared: dict[str, Any], values: dict[str, Any]) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{target / 'study.db'}"
    for step in steps:
        if "mkdir" in step:
            (target / _fill(step["mkdir"], values)).mkdir(parents=True, exist_ok=True)
        elif "write" in step:
            make(target / _fill(step["write"], values), {"text": step["text"]})
        elif "hex" in step:
            make(target / step["hex"], {"hex": step["bytes"]})
        elif step.get("copy_study"):
            shutil.copytree(shared["folder"], target)
        elif "sqlite" in step:
            target.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(target / step["sqlite"])
            for sql in step["sql"]:
                con.execute(sql)
            con.commit()
            con.close()
        elif "optuna" in step:
            target.mkdir(parents=True, exist_ok=True)
            storage = f"sqlite:///{target / step['optuna']}"
            names = step.get("studies") or []
            for name in names or ["scratch"]:
                study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
                for state in step.get("trials", []):
                    study.tell(study.ask(), state=optuna.trial.TrialState[state])
            if not names:
                optuna.delete_study(study_name="scratch", storage=storage)
        elif "add_study" in step:
            optuna.create_study(study_name=step["add_study"], storage=url, directions=["maximize", "minimize"])
        elif "add_trial" in step:
            study = optuna.load_study(study_name="t", storage=url)
            trial = study.ask()
            if step["add_trial"] != "RUNNING":
                study.tell(trial, state=optuna.trial.TrialState[step["add_trial"]])
            values["last"] = trial.number
        elif "set_attr" in step:
            attr = step["set_attr"]
            con = sqlite3.connect(target / "study.db")
            con.execute(
                "UPDATE trial_user_attributes SET value_json = ? WHERE key = ? AND trial_id = "
                "(SELECT trial_id FROM trials WHERE number = ?)",
                (json.dumps(_fill(attr["value"], values)), attr["key"], int(_fill(str(attr["trial"]), values))),
            )
            con.commit()
            con.close()
        elif "chmod" in step:
            (target / step["chmod"]).chmod(step["mode"])
        else:
            raise AssertionError(f"unknown setup step {step!r}")


@pytest.mark.parametrize("case", CASES["targets"], ids=_ids("targets"))
def test_targets(case, shared, untouched, tmp_path, capsys):
    if case.get("needs_non_root") and os.geteuid() == 0:
        pytest.skip("permissions do not stop root")
    target = tmp_path / "target"
    values = {
        "study": shared["folder"],
        "study_yaml": shared["yaml"],
        "tmp": tmp_path,
        "target": target,
        "fail": shared["fail"],
        "pruned": shared["pruned"],
        "done": shared["done"],
        "arch0": shared["arch0"],
    }
    _setup_target(target, case.get("setup", []), shared, values)
    before = snapshot(tmp_path)
    argv = [_fill(a, values) for a in case["argv"]]
    refused(call(argv, capsys), _fill(case["expect"], values), [_fill(n, values) for n in case["names"]])
    assert snapshot(tmp_path) == before
