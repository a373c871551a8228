"""Folder datasets: `folder-seg` (images/ + masks/) and `folder-restore` (input/ + target/).

folder-seg pairs ``images/NAME.ext`` with ``masks/NAME.ext`` (Kvasir-SEG layout) or
``masks/NAME_segmentation.ext`` (ISIC 2018 Task 1 naming). Mask value rule: binary tasks
take 0/1 masks (foreground = 1) or 0/255 masks (foreground = value >= 128, so JPEG
masks work); a binary mask whose values are small class ids (max 2-15) is rejected, as
it most likely belongs to a multi-class task. Multi-class tasks (classes = K > 2) take
class ids 0..K-1. Images are resized (bilinear) and masks resized (nearest) to the
training size.

folder-restore pairs ``input/NAME.ext`` with ``target/NAME.ext`` (SIDD or GoPro style);
the two images of a pair must have the same size. Training takes random crops at the
training size (images smaller than it are upscaled); validation takes the centre crop.

Everything is checked before any training starts, and an error names the file and the
problem. The validation split is seeded (``val_fraction``) or read from a split file
(one validation stem per line).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from .base import TASKS, Batch, Task, check_int

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _root(data: Any) -> Path:
    if not isinstance(data, str | Path) or not str(data) or "\0" in str(data):
        raise UserError(f"task option data: {data!r}; allowed: a dataset folder")
    root = Path(data)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: is a file; allowed: a dataset folder")
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    return root


def _files(folder: Path, what: str) -> dict[str, Path]:
    """The images of `folder` by stem; `what` says what the folder holds, for messages."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: is a file; allowed: a folder of {what}")
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found; allowed: a folder of {what}")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_EXTS:
            continue
        if p.stem in files:
            raise UserError(f"{folder}: {files[p.stem].name} and {p.name} share the name {p.stem!r}; allowed: one image per name")
        files[p.stem] = p
    if not files:
        raise UserError(f"{folder}: no images ({', '.join(IMAGE_EXTS)}); allowed: a folder of {what}")
    return files


def _read_image(path: Path, mode: Any) -> Any:
    """Decode an image (mode None: only its size; a callable: it picks the pixels). Corrupt files and decompression bombs
    (a few KiB declaring a huge canvas) are UserErrors naming the file."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size if mode is None else np.asarray(mode(im) if callable(mode) else im.convert(mode))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        limit = Image.MAX_IMAGE_PIXELS or 0
        raise UserError(f"{path}: image too large to decode safely ({err}); allowed: at most {limit:,} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: unreadable or corrupt image ({err})") from None


def _load(path: Path, mode: str) -> np.ndarray:
    return _read_image(path, mode)


def _size(path: Path) -> tuple[int, int]:
    return _read_image(path, None)


def _split(stems: list[str], val_fraction: float, split: str | None, seed: int, root: Path) -> tuple[list[str], list[str]]:
    if split is not None:
        from ..files import read_text

        path = Path(split)
        wanted = [s.strip() for s in read_text(path, "split").splitlines() if s.strip()]
        unknown = [s for s in wanted if s not in stems]
        if unknown:
            raise UserError(f"{path}: stem {unknown[0]!r} is not an image of {root}; allowed: the names of its images")
        val = [s for s in stems if s in set(wanted)]
        where = f"{path}: the split file"
    else:
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0 < val_fraction < 1:
            raise UserError(f"task option val_fraction: {val_fraction!r}; allowed: 0 < val_fraction < 1")
        order = np.random.default_rng(seed).permutation(len(stems))
        n_val = max(1, round(val_fraction * len(stems)))
        val = sorted(stems[i] for i in order[:n_val])
        where = f"{root}: val_fraction {val_fraction:g} of {len(stems)} image(s)"
    train = [s for s in stems if s not in set(val)]
    if not train or not val:
        missing = "training" if not train else "validation"
        raise UserError(f"{where}: the split leaves no {missing} images; allowed: at least one image on each side")
    return train, val


def _resize(img: np.ndarray, size: tuple[int, int], nearest: bool) -> torch.Tensor:
    t = torch.from_numpy(np.array(img, copy=True))
    t = t[None, None].float() if t.dim() == 2 else t.permute(2, 0, 1)[None].float()
    if tuple(t.shape[-2:]) != size:
        t = (
            F.interpolate(t, size=size, mode="nearest")
            if nearest
            else F.interpolate(t, size=size, mode="bilinear", antialias=True)
        )
    return t[0]


def mask_labels(mask: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    """Class ids of a mask by the documented value rule (raises UserError otherwise)."""
    top = int(mask.max()) if mask.size else 0
    if num_classes == 2:
        if top <= 1:
            return mask.astype(np.uint8)
        if top < 16:
            raise UserError(
                f"{path}: mask values 0..{top} look like class ids; binary masks are 0/1 or 0/255 (set classes for multi-class)"
            )
        return (mask >= 128).astype(np.uint8)
    if top >= num_classes:
        raise UserError(f"{path}: mask value {top} is outside the class ids 0..{num_classes - 1} of a {num_classes}-class task")
    return mask.astype(np.uint8)


@TASKS.register("folder-seg")
class FolderSeg(Task):
    kind = "seg"

    def __init__(
        self, data: str | Path | None = None, classes: int = 2, val_fraction: float = 0.2, split: str | None = None, seed: int = 0
    ):
        if data is None:
            raise UserError("task folder-seg: option data is required (a folder with images/ and masks/)")
        classes = check_int(self.name, "classes", classes, 2)  # background included
        self.root, self.num_classes, self.seed = _root(data), classes, check_int(self.name, "seed", seed, 0)
        images = _files(self.root / "images", "images")
        masks = _files(self.root / "masks", "masks beside images/")
        self.pairs: dict[str, tuple[Path, Path]] = {}
        for stem, img in images.items():
            mask = masks.get(stem) or masks.get(f"{stem}_segmentation")
            if mask is None:
                raise UserError(f"{img}: no mask for this image (looked for masks/{stem}.* and masks/{stem}_segmentation.*)")
            self.pairs[stem] = (img, mask)
        self.train_stems, self.val_stems = _split(sorted(self.pairs), val_fraction, split, seed, self.root)

    @functools.lru_cache(maxsize=4)  # noqa: B019 - one task object, a few sizes
    def _decode(self, stems: tuple[str, ...], size: tuple[int, int]) -> Batch:
        xs, ys = [], []
        for stem in stems:
            img_path, mask_path = self.pairs[stem]
            img, mask = _load(img_path, "RGB"), _load(mask_path, "L")
            if img.shape[:2] != mask.shape[:2]:
                raise UserError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {img.shape[1]}x{img.shape[0]}")
            xs.append(_resize(img, size, nearest=False) / 255.0)
            ys.append(_resize(mask_labels(mask, self.num_classes, mask_path), size, nearest=True)[0].long())
        return torch.stack(xs).clamp_(0, 1), torch.stack(ys)

    def data_footprint(self, size: tuple[int, int]) -> tuple[int, str]:
        n = len(self.pairs)
        return self._pairs_bytes(n, size), f"{len(self.train_stems)} training + {len(self.val_stems)} validation images"

    def check(self, size: tuple[int, int]) -> None:
        """Decode everything now, so bad files fail before training starts."""
        self.train_pool(size, 0)
        self.val_set(size)

    def train_pool(self, size: tuple[int, int], seed: int) -> Batch:
        return self._decode(tuple(self.train_stems), tuple(size))

    def val_set(self, size: tuple[int, int]) -> Batch:
        return self._decode(tuple(self.val_stems), tuple(size))

    def describe(self) -> dict:
        return {**super().describe(), "data": str(self.root), "train": len(self.train_stems), "val": len(self.val_stems)}


@TASKS.register("folder-restore")
class FolderRestore(Task):
    kind = "restore"

    def __init__(self, data: str | Path | None = None, val_fraction: float = 0.2, split: str | None = None, seed: int = 0):
        if data is None:
            raise UserError("task folder-restore: option data is required (a folder with input/ and target/)")
        self.root, self.seed = _root(data), check_int(self.name, "seed", seed, 0)
        self.sizes: dict[str, tuple[int, int]] = {}
        inputs = _files(self.root / "input", "input images")
        targets = _files(self.root / "target", "target images beside input/")
        self.pairs: dict[str, tuple[Path, Path]] = {}
        for stem, inp in inputs.items():
            tgt = targets.get(stem)
            if tgt is None:
                raise UserError(f"{inp}: no target image for this input (looked for target/{stem}.*)")
            (a, b), (c, d) = _size(inp), _size(tgt)
            if (a, b) != (c, d):
                raise UserError(f"{tgt}: target is {c}x{d}, its input {a}x{b}; the two images of a pair must have the same size")
            self.pairs[stem] = (inp, tgt)
            self.sizes[stem] = (b, a)  # H, W
        self.train_stems, self.val_stems = _split(sorted(self.pairs), val_fraction, split, seed, self.root)

    @functools.lru_cache(maxsize=2)  # noqa: B019
    def _decode(self, stems: tuple[str, ...], size: tuple[int, int]) -> list[Batch]:
        out = []
        for stem in stems:
            pair = [_load(p, "RGB") for p in self.pairs[stem]]
            h, w = pair[0].shape[:2]
            scale = max(size[0] / h, size[1] / w, 1)
            new = (max(size[0], round(h * scale)), max(size[1], round(w * scale)))
            out.append(tuple(_resize(a, new, nearest=False) / 255.0 for a in pair))
        return out

    def data_footprint(self, size: tuple[int, int]) -> tuple[int, str]:
        total = 0
        for h, w in self.sizes.values():  # decoded at the image's size, upscaled to at least `size`
            scale = max(size[0] / h, size[1] / w, 1)
            total += self._pairs_bytes(1, (max(size[0], round(h * scale)), max(size[1], round(w * scale))))
        return total, f"{len(self.train_stems)} training + {len(self.val_stems)} validation pairs"

    def check(self, size: tuple[int, int]) -> None:
        self._decode(tuple(self.train_stems), tuple(size))
        self.val_set(size)

    def train_batches(self, size: tuple[int, int], batch: int, seed: int) -> Iterator[Batch]:
        pairs = self._decode(tuple(self.train_stems), tuple(size))
        g = torch.Generator().manual_seed(seed)
        h, w = size

        def stream() -> Iterator[Batch]:
            while True:
                xs, ys = [], []
                for i in torch.randint(len(pairs), (batch,), generator=g).tolist():
                    inp, tgt = pairs[i]
                    y = int(torch.randint(inp.shape[1] - h + 1, (1,), generator=g))
                    x = int(torch.randint(inp.shape[2] - w + 1, (1,), generator=g))
                    xs.append(inp[:, y : y + h, x : x + w])
                    ys.append(tgt[:, y : y + h, x : x + w])
                yield torch.stack(xs), torch.stack(ys)

        return stream()

    def val_set(self, size: tuple[int, int]) -> Batch:
        h, w = size
        xs, ys = [], []
        for inp, tgt in self._decode(tuple(self.val_stems), tuple(size)):
            y, x = (inp.shape[1] - h) // 2, (inp.shape[2] - w) // 2
            xs.append(inp[:, y : y + h, x : x + w])
            ys.append(tgt[:, y : y + h, x : x + w])
        return torch.stack(xs), torch.stack(ys)

    def describe(self) -> dict:
        return {**super().describe(), "data": str(self.root), "train": len(self.train_stems), "val": len(self.val_stems)}
