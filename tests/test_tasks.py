"""Tasks: the procedural and bundled data, folder datasets and their error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from skipsearch import UserError
from skipsearch.tasks import list_tasks, make_task
from skipsearch.tasks.shapes import render


def test_registry():
    assert list_tasks() == ["folder-restore", "folder-seg", "nnunet-raw", "photos-denoise", "shapes", "shapes3d"]
    with pytest.raises(UserError, match="unknown task 'shape'; allowed: .*did you mean 'shapes'"):
        make_task("shape")
    with pytest.raises(UserError, match="unknown option 'sigmaa'"):
        make_task("photos-denoise", sigmaa=3)


# ---------------------------------------------------------------- shapes
def test_shapes_deterministic_per_index_and_any_size():
    a, ma = render(7, 37, 53, seed=3)
    b, mb = render(7, 37, 53, seed=3)
    c, _ = render(8, 37, 53, seed=3)
    assert a.shape == (3, 37, 53) and ma.shape == (37, 53)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and set(np.unique(ma)) <= {0, 1}


def test_shapes_label_is_the_largest_blob_only():
    # the image differs from the background in more places than the mask covers: distractors
    fractions = [render(i, 64, 64)[1].mean() for i in range(20)]
    assert all(0.02 < f < 0.5 for f in fractions)


def test_shapes_pools_and_batches():
    task = make_task("shapes", train_samples=16, val_samples=8)
    x, y = next(task.train_batches((32, 40), 4, seed=0))
    assert x.shape == (4, 3, 32, 40) and y.shape == (4, 32, 40) and y.dtype == torch.long
    vx, vy = task.val_set((32, 40))
    assert len(vx) == 8 and not torch.equal(vx[0], task.train_pool((32, 40), 0)[0][0])


# ---------------------------------------------------------------- photos
def test_photos_split_by_image_and_fixed_validation():
    task = make_task("photos-denoise", sigma=50)
    assert not set(task.train_names) & set(task.val_names)
    noisy, clean = next(task.train_batches((48, 48), 3, seed=0))
    assert noisy.shape == clean.shape == (3, 3, 48, 48)
    assert (noisy - clean).std().item() == pytest.approx(50 / 255, rel=0.15)
    v1, v2 = task.val_set((48, 48)), task.val_set((48, 48))
    assert torch.equal(v1[0], v2[0]) and len(v1[0]) == 4 * len(task.val_names)


def test_photos_options_are_checked():
    with pytest.raises(UserError, match="sigma: 0"):
        make_task("photos-denoise", sigma=0)
    with pytest.raises(UserError, match="unknown photo 'lena'"):
        make_task("photos-denoise", val_images=("lena",))


# ---------------------------------------------------------------- folders
def _img(path, size=(20, 16), value=None, mode="RGB"):
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    arr = rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.asarray(value, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_seg(root, n=5, mask_values=(0, 255), naming="{stem}.png"):
    for i in range(n):
        _img(root / "images" / f"im{i}.jpg")
        m = np.zeros((16, 20), dtype=np.uint8)
        m[4:10, 5:12] = mask_values[1]
        _img(root / "masks" / naming.format(stem=f"im{i}"), value=m, mode="L")
    return root


@pytest.mark.parametrize("values", [(0, 255), (0, 1)])
@pytest.mark.parametrize("naming", ["{stem}.png", "{stem}_segmentation.png"])
def test_folder_seg_layouts_and_value_rules(tmp_path, values, naming):
    task = make_task("folder-seg", data=make_seg(tmp_path, mask_values=values, naming=naming), val_fraction=0.4)
    assert len(task.train_stems) == 3 and len(task.val_stems) == 2
    x, y = task.train_pool((8, 10), 0)
    assert x.shape == (3, 3, 8, 10) and set(y.unique().tolist()) == {0, 1}


def test_folder_seg_split_file(tmp_path):
    root = make_seg(tmp_path)
    (tmp_path / "split.txt").write_text("im1\nim3\n")
    task = make_task("folder-seg", data=root, split=str(tmp_path / "split.txt"))
    assert task.val_stems == ["im1", "im3"]


def test_folder_seg_multiclass(tmp_path):
    root = make_seg(tmp_path, mask_values=(0, 2))
    task = make_task("folder-seg", data=root, classes=3)
    assert task.out_channels == 3
    assert set(task.val_set((16, 20))[1].unique().tolist()) == {0, 2}


def _raises(message, **options):
    with pytest.raises(UserError, match=message):
        task = make_task(**options)
        task.check((8, 8))


def test_folder_seg_errors(tmp_path):
    _raises("folder not found", name="folder-seg", data=tmp_path / "nope")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    _raises("empty/images: no images", name="folder-seg", data=tmp_path / "empty")
    root = make_seg(tmp_path / "a")
    (root / "masks" / "im2.png").unlink()
    _raises(
        r"im2.jpg: no mask for this image \(looked for masks/im2.\* and masks/im2_segmentation.\*\)", name="folder-seg", data=root
    )
    root = make_seg(tmp_path / "b")
    (root / "images" / "im1.jpg").write_bytes(b"not an image")
    _raises("im1.jpg: unreadable or corrupt image", name="folder-seg", data=root)
    root = make_seg(tmp_path / "c", mask_values=(0, 3))
    _raises("im0.png: mask values 0..3 look like class ids", name="folder-seg", data=root)
    root = make_seg(tmp_path / "d", mask_values=(0, 7))
    _raises("mask value 7 is outside the class ids 0..2 of a 3-class task", name="folder-seg", data=root, classes=3)
    root = make_seg(tmp_path / "e")
    _img(root / "masks" / "im4.png", size=(10, 10), value=np.zeros((10, 10)), mode="L")
    _raises("im4.png: mask is 10x10, its image 20x16", name="folder-seg", data=root)
    _raises("option data is required", name="folder-seg")


def make_restore(root, n=4, size=(40, 30)):
    for i in range(n):
        _img(root / "input" / f"p{i}.png", size=size)
        _img(root / "target" / f"p{i}.png", size=size)
    return root


def test_folder_restore(tmp_path):
    task = make_task("folder-restore", data=make_restore(tmp_path), val_fraction=0.25)
    x, y = next(task.train_batches((16, 24), 2, seed=0))
    assert x.shape == y.shape == (2, 3, 16, 24)
    vx, vy = task.val_set((16, 24))
    assert vx.shape == (1, 3, 16, 24)


def test_folder_restore_errors(tmp_path):
    root = make_restore(tmp_path / "a")
    _img(root / "target" / "p1.png", size=(41, 30))
    _raises("p1.png: target is 41x30, its input 40x30", name="folder-restore", data=root)
    root = make_restore(tmp_path / "b")
    (root / "target" / "p2.png").unlink()
    _raises(r"p2.png: no target image for this input", name="folder-restore", data=root)
