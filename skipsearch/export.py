"""Export bundles: a trained trial as files a user can ship, each checked at export.

A bundle folder (named by arch id) holds spec.json, model.safetensors (the trial's
weights), model.onnx, model.ts (TorchScript, traced at the export size), model.py (a
torch-only definition of the same network) and MODEL_CARD.md. Every format is run on a
random input and compared with the torch model (max abs difference at most 1e-4; ONNX
through onnxruntime); the figures go into the card.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .costs.fit import check_fits, param_bytes
from .errors import UserError
from .model import UNet, build_model
from .outputs import check_target, publish
from .search import attrs as A
from .spec import ArchSpec

TOLERANCE = 1e-4  # relative to the output's largest magnitude (at least 1): float32 kernels differ in order


def load(path: str | Path) -> UNet:
    """The model of an export bundle (or any folder with spec.json and model.safetensors).
    Built from JSON and safetensors only: nothing is unpickled."""
    from safetensors.torch import load_file

    path = Path(path)
    for name in ("spec.json", "model.safetensors"):
        if not (path / name).exists():
            raise UserError(f"{path}: no {name} in this folder")
    spec = _bundle_spec(path)
    check_fits(param_bytes(spec), "cpu", f"{path / 'spec.json'}: the weights of this architecture")
    model = build_model(spec)
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")))
    except (RuntimeError, OSError, ValueError) as err:  # safetensors raises SafetensorError, a plain Exception
        raise UserError(f"{path / 'model.safetensors'}: does not fit spec.json ({str(err).splitlines()[0][:300]})") from None
    except Exception as err:
        if type(err).__name__ != "SafetensorError":
            raise
        raise UserError(f"{path / 'model.safetensors'}: not a readable safetensors file ({err})") from None
    return model.eval()


def _bundle_spec(path: Path) -> ArchSpec:
    from .errors import SpecError
    from .files import read_text

    try:
        return ArchSpec.from_json(read_text(path / "spec.json", "spec"))
    except SpecError as err:
        raise UserError(f"{path / 'spec.json'}: {err}") from None


def _diff(a: torch.Tensor, b: Any) -> float:
    return float((a - torch.as_tensor(b)).abs().max())


def _check_onnx(path: Path, x: torch.Tensor, ref: torch.Tensor) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _diff(ref, session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def _check_module_file(path: Path, weights: Path, x: torch.Tensor, ref: torch.Tensor) -> float:
    from safetensors.torch import load_file

    name = f"skipsearch_export_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        net = module.build().eval()
        net.load_state_dict(load_file(str(weights)))
        with torch.no_grad():
            return _diff(ref, net(x))
    finally:
        sys.modules.pop(name, None)


def write_formats(model: UNet, folder: Path, size: tuple[int, int]) -> tuple[dict[str, float], float]:
    """Write ONNX, TorchScript and model.py beside the weights; return the max abs
    difference of each against the torch model on one random input, and the largest
    difference allowed (TOLERANCE times the output's largest magnitude, at least 1:
    a trained network's logits reach tens, where float32 rounding alone is ~1e-5 each)."""
    from .standalone import bundle_source

    spec = model.spec
    x = torch.randn(1, spec.in_channels, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
    checks: dict[str, float] = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(folder / "model.onnx"), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["output"])  # fmt: skip
        traced = torch.jit.trace(model, x)
    checks["model.onnx (onnxruntime)"] = _check_onnx(folder / "model.onnx", x, ref)
    traced.save(str(folder / "model.ts"))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates jit.load; the format still ships
        checks["model.ts (TorchScript)"] = _diff(ref, torch.jit.load(str(folder / "model.ts"))(x))
    (folder / "model.py").write_text(bundle_source(spec))
    checks["model.py + model.safetensors"] = _check_module_file(folder / "model.py", folder / "model.safetensors", x, ref)
    with torch.no_grad():
        checks["skipsearch.load()"] = _diff(ref, load(folder)(x))
    return checks, TOLERANCE * max(1.0, float(ref.abs().max()))


def export_trial(results, number: int, out: Path, force: bool = False) -> Path:
    """One bundle for trial `number` of a loaded study; UserError when it cannot be."""
    from .card import model_card

    by_number = {t.number: t for t in results.trials}
    if number not in by_number:
        raise UserError(f"{number} is not a trial of study {results.name!r}; allowed: 0..{len(by_number) - 1}", field="trial")
    trial = by_number[number]
    attrs = trial.user_attrs
    if trial.state != "COMPLETE":
        why = A.failure(trial) or A.infeasible(trial) or "not finished yet"
        raise UserError(f"trial {number} is {trial.state}, not complete ({why}); allowed: a COMPLETE trial", field="trial")
    source = by_number.get(A.duplicate_of(trial), trial)
    weights = A.weights(source)
    if not weights or not Path(weights).is_file():
        raise UserError(f"trial {number} has no weights on disk (expected {weights or 'a weights path'})", field="trial")
    spec = _stored_spec(number, attrs)
    _check_weights(Path(weights), spec)
    final = out / spec.arch_id
    if not force and _same_bundle(final, Path(weights), spec):
        return final  # exported before from these very weights: nothing to write
    check_target(final, "export bundle", force=force)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.arch_id}-", dir=out))
    except BaseException:
        if created:
            out.rmdir()
        raise
    try:
        shutil.copyfile(weights, tmp / "model.safetensors")
        (tmp / "spec.json").write_text(spec.to_json() + "\n")
        model = load(tmp)
        size = tuple(results.config.get("budget", {}).get("size", (64, 64)))
        checks, limit = write_formats(model, tmp, size)
        bad = {k: v for k, v in checks.items() if not v <= limit}
        (tmp / "MODEL_CARD.md").write_text(model_card(results, trial, spec, checks, size, limit))
        (tmp / "checks.json").write_text(json.dumps(checks, indent=2) + "\n")
        if bad:
            raise UserError(f"export of trial {number}: outputs differ beyond {limit:.3g}: {bad}")
        publish(tmp, final, "export")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()  # a refused export leaves no folder behind
        raise
    return final


def _stored_spec(number: int, attrs: dict[str, Any]) -> ArchSpec:
    from .errors import SpecError

    try:
        return A.spec(attrs)
    except SpecError as err:
        raise UserError(f"trial {number}: stored spec: {err}", field="trial") from None


def _check_weights(path: Path, spec: ArchSpec) -> None:
    """The trial's weights are a safetensors file (its header read, nothing loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as err:  # noqa: BLE001 - safetensors raises SafetensorError, a plain Exception
        first = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise UserError(f"{path}: not a readable safetensors file ({first}); allowed: the weights of {spec.arch_id}") from None


def _same_bundle(final: Path, weights: Path, spec: ArchSpec) -> bool:
    """An earlier bundle of this architecture from byte-identical weights: exporting again
    (re-running the quickstart's commands) keeps it rather than refusing."""
    try:
        return (
            (final / "checks.json").is_file()
            and (final / "spec.json").read_text() == spec.to_json() + "\n"
            and _sha256(final / "model.safetensors") == _sha256(weights)
        )
    except OSError:
        return False


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_pareto(results, out: Path, force: bool = False) -> list[Path]:
    front = results.front
    if front.empty:
        raise UserError(
            f"{results.directory}: study {results.name!r} has no feasible complete trial on a Pareto front yet; "
            "allowed: a study with at least one (or one trial of it, by number)"
        )
    by_arch: dict[Any, Any] = {}
    for _, row in front.iterrows():  # one bundle per architecture: its first trial
        by_arch.setdefault(row.get(A.ARCH_ID), row)
    rows = list(by_arch.values())
    by_number = {t.number: t for t in results.trials}
    for row in rows:  # refuse before writing any bundle
        number = int(row["number"])
        final, attrs = out / str(row.get(A.ARCH_ID)), by_number[number].user_attrs
        weights = A.weights(attrs)
        same = isinstance(weights, str) and _same_bundle(final, Path(weights), _stored_spec(number, attrs))
        if force or not same:
            check_target(final, "export bundle", force=force)
    return [export_trial(results, int(row["number"]), out, force) for row in rows]
