"""nnunet-raw: nnU-Net's raw layout, the disk cache, patches with foreground oversampling,
sliding-window validation and Dice per class. (Its bad inputs are in the corpus.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from skipsearch import UserError
from skipsearch.cli import main
from skipsearch.tasks import make_task, patches, raw_cache, sliding
from skipsearch.tasks.metrics import class_keys, segmentation_metrics
from skipsearch.tasks.nnunet_raw import nnunet_folds
from skipsearch.tasks.raw_demo import write
from skipsearch.testing import small_spec
from skipsearch.train import Budget, evaluate, val_metrics


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """Six 20x24x28 cases, two channels (one CT), three classes."""
    return write(tmp_path_factory.mktemp("raw") / "Dataset001_Demo", 6, (20, 24, 28), classes=3, channels=("CT", "T2"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write(tmp_path_factory.mktemp("raw2d") / "Dataset002_Demo", 5, (40, 48))


# -- layout and split ---------------------------------------------------------------------
def test_the_dataset_json_decides_the_task(volumes, images):
    task = make_task("nnunet-raw", data=str(volumes))
    assert (task.spatial_dims, task.in_channels, task.num_classes) == (3, 2, 3)
    assert task.out_channels == 3 and task.class_names == ("background", "part1", "part2")
    assert task.layout.cases[0].shape == (20, 24, 28)  # (z, y, x) of a file written (x, y, z)
    flat = make_task("nnunet-raw", data=str(images))
    assert (flat.spatial_dims, flat.in_channels, flat.num_classes, flat.out_channels) == (2, 1, 2, 1)


def test_folds_are_nnunets_five_fold_split():
    names = [f"case_{i:03d}" for i in range(13)]
    folds = nnunet_folds(list(reversed(names)))  # the order given does not matter: sorted first
    assert sorted(sum(folds, [])) == names and [len(f) for f in folds] == [3, 3, 3, 2, 2]
    sklearn = pytest.importorskip("sklearn.model_selection")  # what nnU-Net's do_split calls
    kfold = sklearn.KFold(n_splits=5, shuffle=True, random_state=12345)
    expected = [sorted(np.array(names)[val].tolist()) for _, val in kfold.split(names)]
    assert folds == expected


def test_split_files_text_and_splits_final_json(volumes, tmp_path):
    (tmp_path / "val.txt").write_text("case_001\ncase_004\n")
    task = make_task("nnunet-raw", data=str(volumes), split=str(tmp_path / "val.txt"))
    assert [task.layout.cases[i].name for i in task.val_indices] == ["case_001", "case_004"]
    folds = [{"train": [], "val": ["case_000"]}, {"train": [], "val": ["case_005"]}]
    (tmp_path / "splits_final.json").write_text(json.dumps(folds))
    task = make_task("nnunet-raw", data=str(volumes), split=str(tmp_path / "splits_final.json"), fold=1)
    assert [task.layout.cases[i].name for i in task.val_indices] == ["case_005"] and len(task.train_indices) == 5


# -- the cache ------------------------------------------------------------------------------
def test_cache_holds_the_files_voxels_and_is_built_once(volumes, cache):
    import nibabel

    task = make_task("nnunet-raw", data=str(volumes))
    task.check((16, 16, 16))
    assert task._built and task.notes((16, 16, 16))[0].startswith("decoded 6 cases into")
    cached = task.cached()
    raw = np.asarray(nibabel.load(str(volumes / "imagesTr" / "case_002_0001.nii.gz")).dataobj).transpose(2, 1, 0)
    assert np.array_equal(cached.array(2, "image")[1], raw)
    label = np.asarray(nibabel.load(str(volumes / "labelsTr" / "case_002.nii.gz")).dataobj).transpose(2, 1, 0)
    assert np.array_equal(cached.array(2, "label"), label)
    again = make_task("nnunet-raw", data=str(volumes))
    again.check((16, 16, 16))
    assert not again._built and again.cached().folder == cached.folder
    assert len(list((cache / "nnunet-raw").iterdir())) == 1  # no temporary folder left behind


def test_normalisation_follows_the_channel_names(volumes):
    task = make_task("nnunet-raw", data=str(volumes))
    cached = task.cached()
    image = cached.normalise(0, np.asarray(cached.array(0, "image")))
    t2 = image[1]  # zscore per case
    assert abs(t2.mean()) < 1e-4 and abs(t2.std() - 1) < 1e-3
    ct = cached.meta["norm"][0]  # CT: the dataset's foreground statistics, clipped to its percentiles
    assert ct["scheme"] == "ct" and ct["lo"] < ct["mean"] < ct["hi"]
    raw = np.asarray(cached.array(0, "image")[0], dtype=np.float64)
    want = (np.clip(raw, ct["lo"], ct["hi"]) - ct["mean"]) / ct["std"]
    assert np.allclose(image[0], want, atol=1e-5)


def test_a_changed_file_makes_a_new_cache(tmp_path):
    root = write(tmp_path / "d", 5, (12, 16, 16))
    first = make_task("nnunet-raw", data=str(root)).cached().folder
    label = root / "labelsTr" / "case_000.nii.gz"
    label.write_bytes(label.read_bytes())  # same bytes, new modification time
    import os

    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    assert make_task("nnunet-raw", data=str(root)).cached().folder != first


# -- patches ---------------------------------------------------------------------------------
def test_crop_pads_outside_the_array_with_zeros():
    arr = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6) + 1
    got = patches.crop(arr, [-2, 3], (8, 4))
    want = np.pad(arr, ((0, 0), (2, 1), (0, 1)))[:, 0:8, 3:7]
    assert got.shape == (2, 8, 4) and np.array_equal(got, want)


def test_corners_stay_within_the_padded_case():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lower = patches.corner((10, 30), (16, 8), rng, None)
        assert -3 <= lower[0] <= -3 and 0 <= lower[1] <= 22  # 10 < 16: padded by 3 before, 3 after


def test_foreground_oversampling_puts_foreground_in_the_last_third(volumes):
    task = make_task("nnunet-raw", data=str(volumes), foreground=0.33)
    stream = task.train_batches((8, 8, 8), 3, seed=1)  # elements 2.. (round(3 x 0.67) = 2) are forced
    for _ in range(30):
        x, y = next(stream)
        assert x.shape == (3, 2, 8, 8, 8) and y.shape == (3, 8, 8, 8) and y.dtype == torch.int64
        assert (y[2] > 0).any()
    off = make_task("nnunet-raw", data=str(volumes), foreground=0)
    missed = sum(int(not (next(off.train_batches((8, 8, 8), 3, seed=s))[1][2] > 0).any()) for s in range(30))
    assert missed > 0  # without oversampling, some patches miss the foreground


def test_a_patch_larger_than_the_case_is_padded_and_said_once(tmp_path, capsys):
    root = write(tmp_path / "d", 5, (12, 16, 16))
    spec = tmp_path / "tiny3d.json"
    spec.write_text(small_spec("conv", "plain", 2, spatial_dims=3).to_json())
    argv = ["train", "--spec", spec, "--task", "nnunet-raw", "--data", root, "--steps", "2", "--batch", "2"]
    assert main([str(a) for a in [*argv, "--size", "16x24x16", "--json"]]) == 0
    err = capsys.readouterr().err
    assert err.count("smaller than the patch 16x24x16") == 1 and "5 of 5 cases" in err


# -- sliding window -------------------------------------------------------------------------
def test_steps_overlap_by_half_and_cover_the_axis():
    assert sliding.steps(100, 64) == [0, 18, 36]  # ceil(36 / 32) + 1 = 3 tiles, spread evenly
    assert sliding.steps(64, 64) == [0] and sliding.steps(65, 64) == [0, 1]
    for size in range(16, 90):
        s = sliding.steps(size, 16)
        assert s[0] == 0 and s[-1] == size - 16 and max(np.diff(s), default=0) <= 8


def test_gaussian_is_one_at_the_centre_and_never_zero():
    g = sliding.gaussian((9, 16, 12))
    assert g[4, 8, 6] == 1 and g.max() == 1 and g.min() > 0
    assert torch.equal(g, g.flip(0)) and g[0, 0, 0] < 0.01


@pytest.mark.parametrize("shape", [(20, 24, 28), (6, 24, 28)])  # the second: smaller than the tile along D
def test_sliding_window_of_a_voxelwise_model_is_the_model_on_the_whole_case(shape):
    torch.manual_seed(0)
    model = torch.nn.Conv3d(2, 3, 1).eval()
    image = torch.randn(2, *shape)
    got = sliding.predict(model, image, (8, 16, 16), batch=4)
    with torch.no_grad():
        want = model(image[None])[0]
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


def test_tile_borders_count_less():
    """A model whose logits are the tile's own index shows the weighting: where two tiles
    overlap, the voxel takes the value of the tile whose centre is nearer."""

    class TileIndex(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return x[:, :1, :1, :1, :1].expand(-1, 1, *x.shape[2:]).clone()  # the tile's corner value everywhere

    image = torch.arange(32.0).reshape(1, 1, 1, 32).expand(1, 8, 8, 32).clone()  # value = x coordinate
    out = sliding.predict(TileIndex(), image, (8, 8, 16), batch=2)[0, 4, 4]  # tiles start at x = 0, 8, 16
    assert out[2] == 0 and out[30] == 16  # covered by tile 0 only, by tile 2 only
    assert 0 < out[10] < 4 < out[14] < 8  # nearer tile 0's centre (8), nearer tile 1's (16)


# -- metrics and training -------------------------------------------------------------------
def test_dice_per_class_by_name():
    assert class_keys(("background", "Left Kidney", "left-kidney", "?")) == ["dice_left_kidney", "dice_left_kidney_2", "dice_3"]
    pred = torch.tensor([[[0, 1, 1, 2]]])
    label = torch.tensor([[[0, 1, 2, 2]]])
    scores = segmentation_metrics(pred, label, 3, ("bg", "a", "b"))
    assert scores["dice_a"].item() == pytest.approx(2 / 3) and scores["dice_b"].item() == pytest.approx(2 / 3)


def test_training_scores_whole_cases_with_dice_per_class(volumes):
    task = make_task("nnunet-raw", data=str(volumes))
    spec = task.adapt(small_spec("conv", "plain", 2, spatial_dims=3))
    result = evaluate(spec, task, Budget(steps=3, batch=2, size=(8, 16, 16), val_batch=4))
    assert {"dice", "mdice", "dice_part1", "dice_part2"} <= set(result)
    assert result["dice"] == pytest.approx((result["dice_part1"] + result["dice_part2"]) / 2)
    assert task.data_footprint((8, 16, 16))[1].startswith("the largest validation case, 20x24x28, scored whole")


def test_validation_of_cases_is_the_mean_over_cases(images):
    """2-D PNG cases: val_metrics on Cases equals scoring each whole case by hand."""
    task = make_task("nnunet-raw", data=str(images))
    spec = task.adapt(small_spec("naf", "plain", 2))
    from skipsearch.model import build_model

    torch.manual_seed(0)
    model = build_model(spec).eval()
    budget = Budget(steps=1, batch=2, size=(16, 16))
    cases = task.val_set((16, 16))
    got = val_metrics(model, task, cases, budget, torch.device("cpu"))
    by_hand = [task.score(sliding.predict(model, x, (16, 16), 2)[None], y[None])["dice"].item() for x, y in cases]
    assert len(cases) == 1 and got["dice"] == pytest.approx(float(np.mean(by_hand)))


def test_a_study_on_an_nnunet_raw_dataset(volumes, tmp_path):
    from test_search import trials_of, write_study

    space = tmp_path / "space.yaml"
    space.write_text(
        "name: raw\nparams:\n  spatial_dims: 3\n  depth: 2\n  width: 4\n  block.type: conv\n"
        "  skip.type: {choice: [plain, none]}\n"
    )
    study = write_study(
        tmp_path,
        task=json.dumps({"name": "nnunet-raw", "data": str(volumes)}),
        space=space,
        n_trials=2,
        budget="{steps: 2, batch: 2, size: [8, 16, 16]}",
        reference_input="[2, 32, 32, 32]",
    )
    assert main(["run", str(study), "--backend", "local"]) == 0
    done = [t for t in trials_of(study) if t.state.name == "COMPLETE"]
    assert len(done) == 2 and all("dice_part2" in t.user_attrs for t in done)


def test_unreadable_option_values():
    with pytest.raises(UserError, match="option data is required"):
        make_task("nnunet-raw")
    with pytest.raises(UserError, match="allowed: a folder with dataset.json, imagesTr/ and labelsTr/"):
        make_task("nnunet-raw", data="/nonexistent/Dataset999")


def test_disk_size_is_what_the_cache_holds(volumes):
    task = make_task("nnunet-raw", data=str(volumes))
    folder = task.cached().folder
    arrays = sum((folder / f"{i}.{w}.npy").stat().st_size - 128 for i in range(6) for w in ("image", "label"))
    assert raw_cache.disk_bytes(task.layout) == arrays  # .npy headers are 128 bytes


def test_a_cache_folder_that_cannot_be_written_is_one_line(volumes, tmp_path):
    (tmp_path / "file").write_text("in the way")
    task = make_task("nnunet-raw", data=str(volumes), cache=str(tmp_path / "file" / "cache"))
    with pytest.raises(UserError, match=r"cannot write the decoded cases here .*allowed: task option cache=DIR"):
        task.check((8, 8, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_volume_with_a_singleton_fourth_axis_is_a_volume(tmp_path):
    import nibabel

    root = write(tmp_path / "d", 5, (12, 16, 16))
    path = root / "imagesTr" / "case_001_0000.nii.gz"
    img = nibabel.load(str(path))
    data = np.asarray(img.dataobj)
    nibabel.save(nibabel.Nifti1Image(data[..., None], img.affine), str(path))
    task = make_task("nnunet-raw", data=str(root))
    assert task.layout.cases[1].shape == (12, 16, 16)
    assert np.array_equal(task.cached().array(1, "image")[0], data.transpose(2, 1, 0))
