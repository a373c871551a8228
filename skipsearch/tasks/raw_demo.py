"""A small dataset in nnU-Net v2's raw layout, written from `shapes3d` (or `shapes` in 2-D).

For trying `nnunet-raw` without medical data, and for its tests::

    python -m skipsearch.tasks.raw_demo DIR [CASES] [DxHxW | HxW]

Volumes are written as .nii.gz (1 mm spacing), images as .png. With classes=3 the
lesion is split into two classes by the plane through its centre, so Dice per class
means something.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..outputs import check_target


def write(
    root: str | Path,
    cases: int = 6,
    shape: tuple[int, ...] = (32, 40, 40),
    classes: int = 2,
    channels: tuple[str, ...] = ("MR",),
    seed: int = 0,
) -> Path:
    """Write the dataset into `root` (a new or empty folder); returns root."""
    root = Path(root)
    check_target(root, "demo dataset")
    volume = len(shape) == 3
    ending = ".nii.gz" if volume else ".png"
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    for i in range(cases):
        image, label = _render(i, shape, seed, volume)
        label = _split_classes(label, classes)
        name = f"case_{i:03d}"
        for c in range(len(channels)):
            shifted = np.clip(image + 0.05 * c, 0, 1)  # each channel a little different
            _save(root / "imagesTr" / f"{name}_{c:04d}{ending}", shifted, volume, image=True)
        _save(root / "labelsTr" / f"{name}{ending}", label, volume, image=False)
    names = ["background", "lesion"] if classes == 2 else ["background", *[f"part{k}" for k in range(1, classes)]]
    meta = {
        "channel_names": {str(c): n for c, n in enumerate(channels)},
        "labels": {n: k for k, n in enumerate(names)},
        "numTraining": cases,
        "file_ending": ending,
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root


def _render(i: int, shape: tuple[int, ...], seed: int, volume: bool) -> tuple[np.ndarray, np.ndarray]:
    if volume:
        from .shapes3d import render

        image, label = render(i, *shape, seed=seed)
        return image[0], label
    from .shapes import render as render2d

    image, label = render2d(i, *shape, seed=seed)
    return image.mean(0), label


def _split_classes(label: np.ndarray, classes: int) -> np.ndarray:
    if classes == 2 or not label.any():
        return label.astype(np.uint8)
    coords = np.argwhere(label)
    centre = coords[:, -1].mean()
    out = label.astype(np.uint8).copy()
    side = np.indices(label.shape)[-1] > centre
    out[(label > 0) & side] = 2
    return np.minimum(out, classes - 1)


def _save(path: Path, array: np.ndarray, volume: bool, image: bool) -> None:
    if volume:
        import nibabel

        data = array.astype(np.float32 if image else np.uint8).transpose(2, 1, 0)  # (D, H, W) -> (x, y, z)
        nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), str(path))
        return
    from PIL import Image

    pixels = np.round(array * 255).astype(np.uint8) if image else array.astype(np.uint8)
    Image.fromarray(pixels).save(path)


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 3:
        print("usage: python -m skipsearch.tasks.raw_demo DIR [CASES] [DxHxW | HxW]", file=sys.stderr)
        return 2
    try:
        cases = int(argv[1]) if len(argv) > 1 else 6
        shape = tuple(int(s) for s in argv[2].split("x")) if len(argv) > 2 else (32, 40, 40)
        if cases < 1 or len(shape) not in (2, 3) or min(shape) < 8:
            raise ValueError
    except ValueError:
        print(f"error: {' '.join(argv[1:])}: allowed: CASES >= 1 and a size DxHxW or HxW, sides >= 8", file=sys.stderr)
        return 2
    try:
        print(write(argv[0], cases, shape))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
