"""The decoded cases of an nnU-Net raw dataset, cached on disk as NumPy arrays.

Compressed NIfTI takes seconds per volume to decode, far too slow for random patches,
and a dataset rarely fits in memory. So each case is decoded once, checked, and written
as `.npy` files (the image as float32 (C, *shape), the label as uint8); training reads
patches from them memory-mapped, so memory holds one batch of patches and the pages the
OS caches, not the dataset. Disk: 4 C + 1 bytes per voxel.

The cache is a folder per dataset version: its name hashes dataset.json and every
file's name, size and modification time, so editing the dataset makes a new one. It is
written in a temporary folder and renamed into place when every case has passed, so a
bad case leaves nothing behind, and two processes building it at once both end with the
one complete copy.

Intensities are normalised when a patch is read, by nnU-Net's scheme for the channel's
name: `zscore` (default) per case, `CT` with the dataset's foreground statistics (0.5 and
99.5 percentiles, mean, standard deviation), `rescale_to_0_1` per case, `rgb_to_0_1`
(/255), `noNorm`. Every scheme is a clip and an affine map per channel, so the cache
keeps the raw values and meta.json the parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .raw_layout import IMAGE_ENDINGS, Case, Layout, read_volume

VERSION = 1
LOCATIONS = 10_000  # foreground voxels kept per class and case for oversampling (as nnU-Net)
COVERAGE = 0.01  # ... or at least this fraction of a class's voxels
CT_SAMPLES = 10_000  # foreground intensities per case for CT statistics


def default_folder() -> Path:
    """$SKIPSEARCH_CACHE, else $XDG_CACHE_HOME/skipsearch, else ~/.cache/skipsearch."""
    if os.environ.get("SKIPSEARCH_CACHE"):
        return Path(os.environ["SKIPSEARCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skipsearch"


def disk_bytes(layout: Layout) -> int:
    """The cache's size on disk (image float32 per channel, label uint8), from the headers."""
    return sum(math.prod(c.shape) * (4 * len(layout.channels) + 1) for c in layout.cases)


def amount(n: float) -> str:
    """Bytes as MiB below a GiB, GiB above."""
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def cache_dir(layout: Layout, folder: Path) -> Path:
    h = hashlib.sha256(json.dumps([VERSION, str(layout.root.resolve()), layout.file_ending, layout.channels,
                                   layout.labels]).encode())  # fmt: skip
    with open(layout.root / "dataset.json", "rb") as f:
        h.update(f.read())
    for case in layout.cases:
        for p in (*case.images, case.label):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in layout.root.resolve().name)[:60]
    return folder / "nnunet-raw" / f"{safe}-{h.hexdigest()[:16]}"


def build(layout: Layout, folder: Path) -> tuple[Path, bool]:
    """The cache folder of `layout` under `folder`, built now if missing; and whether it was built."""
    final = cache_dir(layout, folder)
    if (final / "meta.json").is_file():
        return final, False
    need, free = disk_bytes(layout), _free(final.parent)
    if free is not None and need > free:
        raise UserError(f"{final.parent}: the decoded dataset needs {amount(need)} on disk, {amount(free)} is free; {_ELSEWHERE}")
    made = [p for p in (final.parent, *final.parent.parents) if not p.exists()]  # removed again on failure
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    except OSError as err:
        raise UserError(f"{final.parent}: cannot write the decoded cases here ({err.strerror}); {_ELSEWHERE}") from None
    try:
        meta = _decode_all(layout, tmp)
        _write(tmp / "meta.json", lambda f: f.write((json.dumps(meta) + "\n").encode()))
        try:
            tmp.rename(final)
        except OSError:  # another process published it first: keep theirs
            if not (final / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return final, False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in made:  # innermost first; a folder another process filled meanwhile stays
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    return final, True


_ELSEWHERE = "allowed: task option cache=DIR (or $SKIPSEARCH_CACHE) on a disk with room that this user may write"


def _write(path: Path, fill) -> None:
    """Write one cache file; a full or read-only disk is the cache folder's fault, said so."""
    try:
        with open(path, "wb") as f:
            fill(f)
    except OSError as err:
        raise UserError(f"{path.parent.parent}: cannot write the decoded cases ({err.strerror}); {_ELSEWHERE}") from None


def _free(folder: Path) -> int | None:
    for p in (folder, *folder.parents):
        if p.exists():
            return shutil.disk_usage(p).free
    return None


def _decode_all(layout: Layout, tmp: Path) -> dict[str, Any]:
    rng = np.random.RandomState(1234)  # seeded like nnU-Net's fingerprint sampling
    cases, samples = [], [[] for _ in layout.channels]
    for i, case in enumerate(layout.cases):
        image, label = decode(layout, case)
        locs = locations(label, len(layout.labels), np.random.default_rng(i))
        for what, array in (("image", image), ("label", label), ("locs", locs)):
            _write(tmp / f"{i}.{what}.npy", lambda f, a=array: np.save(f, a))
        fg = label > 0
        stats = []
        for c in range(len(layout.channels)):
            x = image[c]
            stats.append([float(x.mean()), float(x.std()), float(x.min()), float(x.max())])
            if layout.normalization(c) == "ct" and fg.any():
                values = x[fg]
                samples[c].append(values[rng.randint(0, len(values), CT_SAMPLES)])
        cases.append({"name": case.name, "shape": list(case.shape), "stats": stats, "classes": sorted(set(locs[:, 0].tolist()))})
    norm = [_channel_norm(layout, c, cases, samples[c]) for c in range(len(layout.channels))]
    return {"version": VERSION, "cases": cases, "norm": norm}


def decode(layout: Layout, case: Case) -> tuple[np.ndarray, np.ndarray]:
    """One case's image (C, *shape) float32 and label (*shape) uint8, every value checked."""
    channels: list[tuple[Path, np.ndarray]] = []  # (file, one channel)
    for p in case.images:
        arr = read_volume(p, label=False)
        if layout.file_ending in IMAGE_ENDINGS and arr.ndim == 3:  # colour image: H, W, colours
            channels.extend((p, arr[..., k]) for k in range(arr.shape[-1]))
        else:
            channels.append((p, arr))
    if len(channels) != len(layout.channels):
        raise UserError(
            f"{case.images[0]}: case {case.name!r} has {len(channels)} channel(s), dataset.json's channel_names "
            f"{len(layout.channels)}; allowed: one channel per name"
        )
    for p, arr in channels:
        if arr.dtype.kind not in "fiub":
            raise UserError(f"{p}: voxels of type {arr.dtype}; allowed: real-valued intensities")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise UserError(f"{p}: NaN or infinite voxels; allowed: finite intensities")
    image = np.stack([np.asarray(arr, dtype=np.float32) for _, arr in channels])
    return image, _label(layout, case)


def _label(layout: Layout, case: Case) -> np.ndarray:
    raw = read_volume(case.label, label=True)
    k = len(layout.labels)
    if raw.dtype.kind == "f" and (not np.isfinite(raw).all() or (raw != np.round(raw)).any()):
        raise UserError(f"{case.label}: label values that are not whole numbers; allowed: the class ids 0..{k - 1}")
    if raw.dtype.kind not in "fiub":
        raise UserError(f"{case.label}: label of type {raw.dtype}; allowed: integer class ids 0..{k - 1}")
    bad = (raw < 0) | (raw >= k)
    if bad.any():
        values = np.unique(raw[bad])
        shown = ", ".join(f"{v:g}" for v in values[:5].tolist()) + (", ..." if len(values) > 5 else "")
        names = ", ".join(f"{i} {n}" for i, n in enumerate(layout.labels))
        raise UserError(f"{case.label}: class id(s) {shown} not in dataset.json's labels; allowed: {names}")
    return raw.astype(np.uint8)


def locations(label: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Voxels to centre foreground patches on: per class present, up to LOCATIONS of its
    voxels (at least COVERAGE of them), as rows (class, *coordinates), int32."""
    rows = [np.zeros((0, 1 + label.ndim), dtype=np.int32)]
    for c in range(1, classes):
        where = np.argwhere(label == c)
        if not len(where):
            continue
        n = max(min(LOCATIONS, len(where)), math.ceil(len(where) * COVERAGE))
        picked = where[rng.choice(len(where), n, replace=False)] if n < len(where) else where
        rows.append(np.concatenate([np.full((len(picked), 1), c), picked], axis=1).astype(np.int32))
    return np.concatenate(rows)


def _channel_norm(layout: Layout, c: int, cases: list[dict], samples: list[np.ndarray]) -> dict[str, Any]:
    scheme = layout.normalization(c)
    if scheme != "ct":
        if scheme == "rgb_to_0_1":
            for case, info in zip(layout.cases, cases, strict=True):
                lo, hi = info["stats"][c][2:]
                if lo < 0 or hi > 255:
                    raise UserError(
                        f"{case.images[0]}: channel {c} {layout.channels[c]!r} (rgb_to_0_1) has values {lo:g}..{hi:g}; "
                        "allowed: 0-255"
                    )
        return {"scheme": scheme}
    if not samples:
        raise UserError(
            f"{layout.root / 'dataset.json'}: channel {c} is 'CT', normalised with the foreground's intensities, "
            "and no label has foreground; allowed: labels with foreground, or another channel name"
        )
    values = np.concatenate(samples).astype(np.float64)
    lo, hi = np.percentile(values, [0.5, 99.5])
    return {"scheme": "ct", "mean": float(values.mean()), "std": float(values.std()), "lo": float(lo), "hi": float(hi)}


class Cached:
    """The cache of one dataset, opened read-only: memory-mapped arrays and the
    per-case, per-channel normalisation."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.cases = self.meta["cases"]
        self._maps: dict[tuple[int, str], np.ndarray] = {}
        self.affine = [[self._affine(i, c) for c in range(len(self.meta["norm"]))] for i in range(len(self.cases))]

    def array(self, i: int, what: str) -> np.ndarray:
        key = (i, what)
        if key not in self._maps:
            self._maps[key] = np.load(self.folder / f"{i}.{what}.npy", mmap_mode="r" if what != "locs" else None)
        return self._maps[key]

    def _affine(self, i: int, c: int) -> tuple[float, float, float, float]:
        """(low, high, shift, scale): x -> (clip(x, low, high) - shift) * scale."""
        norm, (mean, std, lo, hi) = self.meta["norm"][c], self.cases[i]["stats"][c]
        inf = math.inf
        scheme = norm["scheme"]
        if scheme == "zscore":
            return -inf, inf, mean, 1 / max(std, 1e-8)
        if scheme == "ct":
            return norm["lo"], norm["hi"], norm["mean"], 1 / max(norm["std"], 1e-8)
        if scheme == "rescale_to_0_1":
            return -inf, inf, lo, 1 / max(hi - lo, 1e-8)
        if scheme == "rgb_to_0_1":
            return -inf, inf, 0.0, 1 / 255
        return -inf, inf, 0.0, 1.0  # nonorm

    def normalise(self, i: int, image: np.ndarray) -> np.ndarray:
        """Channels (C, ...) of case i, raw -> normalised (a new float32 array)."""
        out = np.empty(image.shape, dtype=np.float32)
        for c, (lo, hi, shift, scale) in enumerate(self.affine[i]):
            x = np.clip(image[c], lo, hi) if math.isfinite(lo) else image[c]
            out[c] = (x - shift) * scale
        return out
