"""Published checkpoints of the official networks, loaded into the presets that reproduce them.

Each supported preset has an explicit name map: one (checkpoint name, skipsearch name) pair
per tensor, built from the preset's structure. Loading checks it one-to-one: every tensor of
the checkpoint is used once, every tensor of the network gets one, shapes are equal; the
first one that does not fit is reported in one line (UserError).

NAFNet (megvii-research/NAFNet, NAFNet_arch.py): intro -> stem; encoders.i.j -> encoder.i.j;
downs.i -> downs.i; middle_blks.j -> middle.j; ups.k.0 and decoders.k.j (deepest level
first) -> ups.(d-1-k).0 and decoder.(d-1-k).j; ending -> head. Block tensors keep their
names (norm1, conv1, conv2, sca.1, conv3, norm2, conv4, conv5, beta, gamma).

TinyU-Net (ChenJunren-Lab/TinyU-Net, TinyU-Net.py): encoderL.cmrf / decoderL.cmrf ->
encoder.(L-1).0 / decoder.(L-1).0; in a CMRF pwconv1 -> pw1, m.k -> stages.k, pwconv2 ->
pw2, with conv -> 0 and bn -> 1 in each unit; final_conv -> head.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .errors import UserError
from .model import UNet, _no_init, build_model
from .presets import preset as preset_spec
from .spec import ArchSpec

Pairs = list[tuple[str, str]]  # (checkpoint name, skipsearch name)

NAF_BLOCK = (
    "beta",
    "gamma",
    "norm1.weight",
    "norm1.bias",
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "sca.1.weight",
    "sca.1.bias",
    "conv3.weight",
    "conv3.bias",
    "norm2.weight",
    "norm2.bias",
    "conv4.weight",
    "conv4.bias",
    "conv5.weight",
    "conv5.bias",
)
BATCHNORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
CHECKPOINT_KEYS = ("params", "params_ema")  # BasicSR's wrappers, in order of preference


def _same(theirs: str, ours: str, names: tuple[str, ...]) -> Pairs:
    return [(f"{theirs}.{n}", f"{ours}.{n}") for n in names]


def _conv(theirs: str, ours: str, bias: bool = True) -> Pairs:
    return _same(theirs, ours, ("weight", "bias") if bias else ("weight",))


def nafnet_names(spec: ArchSpec) -> Pairs:
    """NAFNet_arch.py's names -> the preset's, one pair per tensor."""
    d = spec.depth
    pairs = _conv("intro", "stem")
    for i in range(d):
        for j in range(spec.enc_blocks[i]):
            pairs += _same(f"encoders.{i}.{j}", f"encoder.{i}.{j}", NAF_BLOCK)
        pairs += _conv(f"downs.{i}", f"downs.{i}")
    for j in range(spec.mid_blocks):
        pairs += _same(f"middle_blks.{j}", f"middle.{j}", NAF_BLOCK)
    for k in range(d):  # upstream's decoder lists run deepest level first
        level = d - 1 - k
        pairs += _conv(f"ups.{k}.0", f"ups.{level}.0", bias=False)
        for j in range(spec.dec_blocks[level]):
            pairs += _same(f"decoders.{k}.{j}", f"decoder.{level}.{j}", NAF_BLOCK)
    return pairs + _conv("ending", "head")


def _unit(theirs: str, ours: str) -> Pairs:
    """TinyU-Net's Conv unit (conv, bn, act) -> skipsearch's Sequential(conv, bn[, act])."""
    return [(f"{theirs}.conv.weight", f"{ours}.0.weight")] + [(f"{theirs}.bn.{n}", f"{ours}.1.{n}") for n in BATCHNORM]


def _cmrf(theirs: str, ours: str, n: int) -> Pairs:
    pairs = _unit(f"{theirs}.pwconv1", f"{ours}.pw1")
    for k in range(n - 1):
        pairs += _unit(f"{theirs}.m.{k}", f"{ours}.stages.{k}")
    return pairs + _unit(f"{theirs}.pwconv2", f"{ours}.pw2")


def tinyunet_names(spec: ArchSpec) -> Pairs:
    """TinyU-Net.py's names -> the preset's, one pair per tensor."""
    n = spec.block["n"]
    pairs: Pairs = []
    for level in range(1, spec.depth + 1):
        pairs += _cmrf(f"encoder{level}.cmrf", f"encoder.{level - 1}.0", n)
    for level in range(spec.depth, 0, -1):
        pairs += _cmrf(f"decoder{level}.cmrf", f"decoder.{level - 1}.0", n)
    return pairs + _conv("final_conv", "head")


LAYOUTS: dict[str, Callable[[ArchSpec], Pairs]] = {
    "nafnet-sidd-w32": nafnet_names,
    "nafnet-sidd-w64": nafnet_names,
    "nafnet-gopro-w32": nafnet_names,
    "nafnet-gopro-w64": nafnet_names,
    "tinyunet": tinyunet_names,
}


def official_names(preset: str) -> Pairs:
    """The name map of a supported preset: (checkpoint name, skipsearch name) per tensor."""
    if preset not in LAYOUTS:
        raise UserError(f"preset {preset!r} has no official checkpoint layout; supported: {', '.join(LAYOUTS)}")
    return LAYOUTS[preset](preset_spec(preset))


def _read(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file: bare, or under BasicSR's "params"/"params_ema"."""
    if not path.is_file():
        raise UserError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... on foreign files
        if "Weights only load failed" in str(err):
            why = "it holds pickled Python objects besides tensors; only weights are read, weights_only=True"
        elif isinstance(err, EOFError):
            why = "empty or truncated"
        else:
            first = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()
            why = f"{type(err).__name__}: {first[0][:200]}" if first else type(err).__name__
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({why})") from None
    if isinstance(obj, Mapping):
        for key in CHECKPOINT_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        what = f"a dict with keys {', '.join(map(repr, list(obj)[:5]))}" if isinstance(obj, Mapping) else type(obj).__name__
        raise UserError(f"{path}: not a checkpoint: holds {what}; expected a state dict or {{'params': state dict}}")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from (Distributed)DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _fit(state: Mapping[str, torch.Tensor], pairs: Pairs, ours: Mapping[str, torch.Tensor], where: str, label: str):
    """The checkpoint's tensors under skipsearch's names; UserError at the first misfit."""
    want = dict(pairs)
    if len(want) != len(pairs) or sorted(want.values()) != sorted(ours):  # the map itself is wrong: a bug here
        raise RuntimeError(f"official name map of {label} does not cover its network one-to-one")
    problems: list[str] = []
    out: dict[str, torch.Tensor] = {}
    missing = [name for name, _ in pairs if name not in state]
    for name, tensor in state.items():
        if name not in want:
            close = difflib.get_close_matches(name, missing, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (not part of {label}'s checkpoint layout)"
            problems.append(f"unexpected tensor {name!r}{hint}")
        elif _shape(tensor) != _shape(ours[want[name]]):
            problems.append(
                f"tensor {name!r} has shape {_shape(tensor)}, expected {_shape(ours[want[name]])} for {label}'s {want[name]}"
            )
        else:
            out[want[name]] = tensor
    for name in missing:
        problems.append(f"no tensor for {name!r} (expected shape {_shape(ours[want[name]])} for {label}'s {want[name]})")
    if problems:
        more = f"; {len(problems)} tensors do not fit in all" if len(problems) > 1 else ""
        raise UserError(f"{where}: {problems[0]}{more}")
    return out


def convert(preset: str, state: Mapping[str, torch.Tensor], where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """An official state dict under the preset's names, checked one-to-one with equal
    shapes (UserError naming `where` and the first tensor that does not fit)."""
    pairs = official_names(preset)
    ours = build_model(preset_spec(preset), "meta").state_dict()
    return _fit(state, pairs, ours, where, preset)


def load_official(preset: str, path: str | Path) -> UNet:
    """The preset's network with a published checkpoint's weights (eval mode).

    Supported presets: the four NAFNet configurations (the released ``.pth`` files hold
    ``{"params": state_dict}``; a bare state dict and ``{"params_ema": ...}`` work too) and
    ``tinyunet`` (TinyU-Net.py's state dict). Read with ``weights_only=True``: nothing but
    tensors is unpickled. UserError (one line) when the file or a tensor does not fit.
    """
    official_names(preset)  # an unsupported preset fails before the file is read
    path = Path(path)
    weights = convert(preset, _read(path), str(path))
    with _no_init():  # every tensor is overwritten below
        model = UNet(preset_spec(preset))
    model.load_state_dict(weights, strict=True)
    return model.eval()


__all__ = ["LAYOUTS", "convert", "load_official", "nafnet_names", "official_names", "tinyunet_names"]
