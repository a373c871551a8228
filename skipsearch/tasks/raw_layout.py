"""nnU-Net v2's raw dataset layout: dataset.json and the cases it describes.

A dataset folder holds::

    dataset.json                  channel_names, labels, numTraining, file_ending
    imagesTr/CASE_0000.nii.gz     one file per channel: CASE_XXXX, XXXX the channel's number
    labelsTr/CASE.nii.gz          class ids 0..K-1

This module reads dataset.json and pairs the files into cases from their names and
headers only (no voxel is decoded): a missing label or channel, an extra channel, a
shape that differs between a case's files, all fail here, naming the file. Voxel
values (corrupt files, classes not in dataset.json, NaN) are checked when the cases are
decoded (raw_cache.py).

Volumes (.nii.gz, .nii, read with nibabel) are (D, H, W) = (z, y, x), the order
nnU-Net uses; images (.png, .bmp) are (H, W), a colour image giving one channel per
colour as in nnU-Net's natural-image reader.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

VOLUME_ENDINGS = (".nii.gz", ".nii")
IMAGE_ENDINGS = (".png", ".bmp")
NORMALIZATIONS = ("ct", "nonorm", "zscore", "rescale_to_0_1", "rgb_to_0_1")  # by channel name; others: zscore
MAX_CLASSES = 255  # labels are cached as uint8


@dataclass(frozen=True)
class Case:
    name: str
    images: tuple[Path, ...]  # one per file (a colour image holds several channels)
    label: Path
    shape: tuple[int, ...]  # spatial: (D, H, W) or (H, W)


@dataclass(frozen=True)
class Layout:
    root: Path
    file_ending: str
    channels: tuple[str, ...]  # channel names, in channel order
    labels: tuple[str, ...]  # class names, by class id (labels[0] is the background)
    cases: tuple[Case, ...]

    @property
    def spatial_dims(self) -> int:
        return 3 if self.file_ending in VOLUME_ENDINGS else 2

    def normalization(self, channel: int) -> str:
        """nnU-Net's scheme for a channel, chosen by its name (case-insensitive)."""
        name = self.channels[channel].lower()
        return name if name in NORMALIZATIONS else "zscore"


def read_layout(data: Any) -> Layout:
    root = _root(data)
    meta = _dataset_json(root / "dataset.json")
    ending = meta["file_ending"]
    channels, labels = meta["channels"], meta["labels"]
    cases = _pair(root, ending, len(channels))
    if meta["num_training"] != len(cases):
        raise UserError(
            f"{root / 'dataset.json'}: numTraining: {meta['num_training']!r}, but labelsTr has {len(cases)} case(s); "
            "allowed: the number of labelled cases"
        )
    return Layout(root, ending, channels, labels, cases)


def _root(data: Any) -> Path:
    if not isinstance(data, str | Path) or not str(data) or "\0" in str(data):
        raise UserError(f"task option data: {data!r}; allowed: a dataset folder in nnU-Net's raw layout")
    root = Path(data)
    if not root.is_dir():
        why = "is a file" if root.exists() else "dataset folder not found"
        raise UserError(f"{root}: {why}; allowed: a folder with dataset.json, imagesTr/ and labelsTr/")
    return root


def _dataset_json(path: Path) -> dict[str, Any]:
    from ..files import read_text

    if not path.is_file():
        raise UserError(f"{path}: not found; allowed: nnU-Net v2's dataset.json (channel_names, labels, file_ending)")
    try:
        meta = json.loads(read_text(path, "dataset.json"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: {type(meta).__name__}; allowed: a JSON object")
    if "channel_names" not in meta and "modality" in meta:
        raise UserError(
            f"{path}: an nnU-Net v1 dataset.json (modality, no channel_names); allowed: v2's layout "
            "(nnUNetv2_convert_old_nnUNet_dataset converts one)"
        )
    for field in ("channel_names", "labels", "file_ending", "numTraining"):
        if field not in meta:
            fields = "channel_names, labels, numTraining, file_ending"
            raise UserError(f"{path}: {field}: missing; allowed: nnU-Net v2's dataset.json with {fields}")
    ending = meta["file_ending"]
    if ending not in VOLUME_ENDINGS + IMAGE_ENDINGS:
        raise UserError(f"{path}: file_ending: {ending!r}; allowed: {', '.join(VOLUME_ENDINGS + IMAGE_ENDINGS)}")
    count = meta["numTraining"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise UserError(f"{path}: numTraining: {count!r}; allowed: the number of labelled cases, >= 1")
    return {"file_ending": ending, "num_training": count, "channels": _channels(path, meta["channel_names"]),
            "labels": _labels(path, meta["labels"])}  # fmt: skip


def _channels(path: Path, raw: Any) -> tuple[str, ...]:
    allowed = 'an object {"0": name, "1": name, ...} numbering the channels from 0'
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: channel_names: {raw!r}; allowed: {allowed}")
    keys = sorted(raw, key=lambda k: int(k) if str(k).isdigit() else -1)
    if [str(k) for k in keys] != [str(i) for i in range(len(raw))] or not all(isinstance(v, str) for v in raw.values()):
        raise UserError(f"{path}: channel_names: {raw!r}; allowed: {allowed}")
    return tuple(raw[k] for k in keys)


def _labels(path: Path, raw: Any) -> tuple[str, ...]:
    allowed = 'an object {"background": 0, name: 1, ...} with the class ids 0..K-1, each once'
    if not isinstance(raw, dict) or len(raw) < 2:
        raise UserError(f"{path}: labels: {raw!r}; allowed: {allowed} (K >= 2)")
    for name, value in raw.items():
        if isinstance(value, list | tuple):
            raise UserError(f"{path}: labels.{name}: {value!r} is a region (region-based training); allowed: one class id")
        if name == "ignore":
            raise UserError(f"{path}: labels.ignore: ignore labels (sparse annotation) are not supported; allowed: classes")
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{path}: labels.{name}: {value!r}; allowed: {allowed}")
    by_id = {v: k for k, v in raw.items()}
    if sorted(by_id) != list(range(len(raw))) or len(by_id) != len(raw):
        raise UserError(f"{path}: labels: ids {sorted(raw.values())}; allowed: {allowed}")
    if len(raw) > MAX_CLASSES:
        raise UserError(f"{path}: labels: {len(raw)} classes; allowed: at most {MAX_CLASSES}")
    return tuple(by_id[i] for i in range(len(raw)))


def _listing(folder: Path, ending: str, what: str) -> list[Path]:
    if not folder.is_dir():
        why = "is a file" if folder.exists() else "folder not found"
        raise UserError(f"{folder}: {why}; allowed: a folder of {what} ending in {ending} (nnU-Net's raw layout)")
    return sorted(p for p in folder.iterdir() if p.name.endswith(ending) and not p.name.startswith("."))


def _pair(root: Path, ending: str, n_channels: int) -> tuple[Case, ...]:
    labels = {p.name[: -len(ending)]: p for p in _listing(root / "labelsTr", ending, "labels")}
    images: dict[str, dict[int, Path]] = {}
    for p in _listing(root / "imagesTr", ending, "images"):
        m = re.fullmatch(r"(.+)_(\d{4})", p.name[: -len(ending)])
        if m is None:
            example = f"case_0000{ending}"
            raise UserError(f"{p}: not named CASE_XXXX{ending}; allowed: the case, _ and the channel number, e.g. {example}")
        images.setdefault(m[1], {})[int(m[2])] = p
    if not labels:
        raise UserError(f"{root / 'labelsTr'}: no labels ending in {ending}; allowed: one label per case, CASE{ending}")
    for name, files in sorted(images.items()):
        if name not in labels:
            raise UserError(f"{files[min(files)]}: no label for case {name!r} (looked for labelsTr/{name}{ending})")
        extra = sorted(set(files) - set(range(n_channels)))
        if extra:
            raise UserError(
                f"{files[extra[0]]}: channel {extra[0]} is not in dataset.json's channel_names; allowed: 0-{n_channels - 1}"
            )
    image_ending = ending in IMAGE_ENDINGS
    cases = []
    for name, label in sorted(labels.items()):
        files = images.get(name, {})
        if image_ending:  # a colour image holds several channels: counted when decoded
            if 0 not in files:
                raise UserError(f"{root / 'imagesTr' / f'{name}_0000{ending}'}: missing (the image of case {name!r})")
            chosen = tuple(files[c] for c in sorted(files))
        else:
            for c in range(n_channels):
                if c not in files:
                    want = root / "imagesTr" / f"{name}_{c:04d}{ending}"
                    raise UserError(f"{want}: missing (channel {c} of case {name!r}; dataset.json has {n_channels} channel(s))")
            chosen = tuple(files[c] for c in range(n_channels))
        cases.append(Case(name, chosen, label, _same_shape(chosen, label)))
    return tuple(cases)


def _same_shape(images: tuple[Path, ...], label: Path) -> tuple[int, ...]:
    want = header_shape(label)
    for p in images:
        got = header_shape(p)
        if got != want:
            size = lambda s: "x".join(map(str, s))  # noqa: E731
            raise UserError(f"{p}: image is {size(got)}, its label {label.name} is {size(want)}; allowed: the same shape")
    return want


def header_shape(path: Path) -> tuple[int, ...]:
    """The spatial shape of a file from its header: (D, H, W) for a volume, (H, W) for an image."""
    if path.name.endswith(VOLUME_ENDINGS):
        shape = _nifti(path).shape
        if len(shape) == 4 and shape[3] == 1:  # a volume written with a singleton time axis
            shape = shape[:3]
        if len(shape) != 3:
            raise UserError(f"{path}: a {len(shape)}-D NIfTI image; allowed: 3-D volumes (one file per channel)")
        return tuple(int(s) for s in reversed(shape))  # x, y, z -> z, y, x
    from .folders import _size

    w, h = _size(path)
    return (h, w)


def _nifti(path: Path):
    import nibabel

    try:
        return nibabel.load(str(path))
    except Exception as err:  # nibabel raises many kinds for a bad header or a broken gzip stream
        raise UserError(f"{path}: unreadable or corrupt NIfTI file ({type(err).__name__}: {err})") from None


def read_volume(path: Path, label: bool) -> np.ndarray:
    """The voxels of one file: (D, H, W) for a volume, (H, W) or (H, W, colours) for an image."""
    if path.name.endswith(VOLUME_ENDINGS):
        img = _nifti(path)
        try:
            data = np.asarray(img.dataobj)
        except Exception as err:  # a truncated or corrupt gzip stream surfaces only here
            raise UserError(f"{path}: unreadable or corrupt NIfTI file ({type(err).__name__}: {err})") from None
        if data.ndim == 4:  # (x, y, z, 1): checked in header_shape
            data = data[..., 0]
        return np.ascontiguousarray(data.transpose(2, 1, 0))
    from .folders import _read_image

    return _read_image(path, _label_pixels(path) if label else _image_pixels)


def _label_pixels(path: Path):
    def pick(im):
        if im.mode not in ("L", "P", "I", "I;16", "1"):
            raise UserError(f"{path}: a {im.mode} label image; allowed: one channel of class ids (grey or palette)")
        return im if im.mode in ("L", "P") else im.convert("I")

    return pick


def _image_pixels(im):
    """Grey stays one channel; colour gives one channel per colour (palette images as RGB)."""
    return im.convert({"L": "L", "I": "I", "I;16": "I", "F": "F", "RGBA": "RGBA", "LA": "RGBA"}.get(im.mode, "RGB"))
