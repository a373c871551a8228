"""3-D networks (spatial_dims 3): the dimension seam, the spec field, skip memory in units
of M_E1 for volumes, and the command line (the contract suite runs every family x design
in 3-D too: tests/test_contract.py)."""

from __future__ import annotations

import json

import pytest
import torch

from skipsearch import ArchSpec, SpecError, profile
from skipsearch.cli import main
from skipsearch.layers import PixelShuffle3d, PixelUnshuffle3d


def test_3d_pixel_shuffle_moves_each_channel_to_its_offset_and_unshuffle_inverts_it():
    r = 2
    x = torch.randn(2, 3 * r**3, 4, 5, 6)
    y = PixelShuffle3d(r)(x)
    assert y.shape == (2, 3, 8, 10, 12)
    for c, a, b, e in [(0, 0, 0, 0), (1, 1, 0, 1), (2, 1, 1, 1), (2, 0, 1, 0)]:
        channel = c * r**3 + a * r**2 + b * r + e
        assert torch.equal(y[:, c, a::r, b::r, e::r], x[:, channel])
    assert torch.equal(PixelUnshuffle3d(r)(y), x)
    z = torch.randn(1, 2, 8, 4, 12)
    assert torch.equal(PixelShuffle3d(2)(PixelUnshuffle3d(2)(z)), z)
    # one depth slice of a 3-D shuffle is torch's 2-D shuffle of the channels for that offset
    flat = x.reshape(2, 3, r, r * r, 4, 5, 6)[:, :, 1].reshape(2, 3 * r * r, 4, 5, 6)
    assert torch.equal(y[:, :, 1::r][:, :, 2], torch.nn.PixelShuffle(r)(flat[:, :, 2]))


def test_spatial_dims_is_left_out_of_the_json_of_images_and_kept_for_volumes():
    image, volume = ArchSpec(), ArchSpec(spatial_dims=3)
    assert "spatial_dims" not in image.to_dict() and image.arch_id == ArchSpec.from_dict(image.to_dict()).arch_id
    assert volume.to_dict()["spatial_dims"] == 3 and volume.arch_id != image.arch_id
    assert ArchSpec.from_json(volume.to_json()) == volume and "3-D" in volume.summary()


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"spatial_dims": 2.0}, "spatial_dims"),
        ({"spatial_dims": True}, "spatial_dims"),
        ({"spatial_dims": "3"}, "spatial_dims"),
        ({"spatial_dims": 3, "up": "bicubic"}, "'bicubic' has no 3-D form"),
        ({"up": "trilinear"}, "'trilinear' has no 2-D form"),
        ({"spatial_dims": 3, "block": {"type": "naf", "tlc": True}}, "block.tlc"),
    ],
)
def test_bad_dimensions_are_one_spec_error(changes, expect):
    with pytest.raises(SpecError, match=expect):
        ArchSpec(**changes)


def test_a_family_default_without_a_3d_form_turns_trilinear():
    assert ArchSpec(block="cmrf").up == "bicubic" and ArchSpec(block="cmrf", spatial_dims=3).up == "trilinear"


def test_plain_skips_of_a_volume_keep_less_m_e1_than_an_image_and_unet_minus_minus_keeps_k():
    image = ArchSpec(depth=4, width=8, block="conv", skip="plain")
    volume = image.replace(spatial_dims=3)
    # level l keeps 2^(l-1) x the width on 1/4^(l-1) (image) or 1/8^(l-1) (volume) of the pixels
    assert profile(image, (3, 64, 64)).skip_memory_me1 == pytest.approx(1 + 1 / 2 + 1 / 4 + 1 / 8)
    p = profile(volume, (3, 32, 32, 32))
    assert p.m_e1_bytes == 8 * 32**3 * 4  # M_E1 = width x D x H x W (float32)
    assert p.skip_memory_me1 == pytest.approx(1 + 1 / 4 + 1 / 16 + 1 / 64)
    assert p.skip_memory_bytes == p.skip_memory_analytic_bytes
    mm = volume.replace(width=32, skip={"type": "msiam_iem", "target": "min", "memory": 0.125})
    q = profile(mm, (3, 32, 32, 32))
    assert q.peak_stage.levels.get("agg") == round(0.125 * 32) * 32**3 * 4  # E' holds K full-resolution maps


def test_profile_takes_a_volume_and_says_which_input_form_a_network_needs(capsys, tmp_path):
    spec = tmp_path / "v.json"
    spec.write_text(ArchSpec(depth=2, width=8, block="conv", skip="plain", spatial_dims=3, in_channels=1).to_json())
    assert main(["profile", "--spec", str(spec), "--input", "1x16x24x20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input"] == [1, 16, 24, 20] and out["skip_memory_bytes"] == out["skip_memory_analytic_bytes"]
    assert main(["profile", "--spec", str(spec), "--input", "1x16x24"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not CxDxHxW" in err[0]
    assert main(["profile", "--spec", str(spec), "--input", "1x16x16x16", "--train", "--checkpoint", "--json"]) == 0
    train = json.loads(capsys.readouterr().out)["train"]
    assert train["size"] == [16, 16, 16] and train["checkpoint"] is True


def test_shapes3d_volumes_are_deterministic_and_label_the_largest_blob():
    from skipsearch.tasks import make_task
    from skipsearch.tasks.shapes3d import render

    x, y = render(3, 24, 32, 28)
    again, label = render(3, 24, 32, 28)
    assert x.shape == (1, 24, 32, 28) and y.shape == (24, 32, 28) and x.dtype.name == "float32"
    assert (x == again).all() and (y == label).all() and not (x == render(4, 24, 32, 28)[0]).all()
    assert 0.002 < y.mean() < 0.2 and x.min() >= 0 and x.max() <= 1
    inside, outside = x[0][y == 1].mean(), x[0][y == 0].mean()
    assert abs(inside - outside) > 0.05  # the lesion differs from its background
    task = make_task("shapes3d", train_samples=4, val_samples=2)
    assert task.spatial_dims == 3 and task.in_channels == 1
    vx, vy = task.val_set((16, 16, 16))
    assert vx.shape == (2, 1, 16, 16, 16) and vy.shape == (2, 16, 16, 16)
    assert task.data_footprint((16, 16, 16))[0] == 6 * 16**3 * 12


def test_a_volume_network_trains_on_shapes3d_and_refuses_image_sizes(capsys, tmp_path):
    spec = tmp_path / "v.json"
    spec.write_text(ArchSpec(depth=2, width=8, block="conv", skip="plain", spatial_dims=3).to_json())
    args = ["train", "--spec", str(spec), "--task", "shapes3d", "--steps", "3", "--batch", "2", "--json"]
    assert main([*args, "--size", "16x16x24"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["task"] == "shapes3d" and out["steps"] == 3 and 0 <= out["dice"] <= 1
    assert main([*args, "--size", "16x16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size: '16x16' is not DxHxW" in err[0]


def test_a_volume_study_runs_and_its_trials_render_and_export(tmp_path, capsys):
    from pathlib import Path

    from skipsearch.results import load_results
    from skipsearch.search.config import load_study

    root = Path(__file__).resolve().parents[1]
    shipped = load_study(root / "studies" / "volumetric.yaml")
    assert shipped.reference_input == (1, 128, 128, 128) and len(shipped.budget.size) == 3
    study = tmp_path / "v.yaml"
    study.write_text(
        "name: v\ntask: {name: shapes3d, train_samples: 4, val_samples: 2}\n"
        f"space: {root / 'search_spaces' / 'volumetric.yaml'}\nsampler: random\nn_trials: 3\n"
        "budget: {steps: 2, batch: 2, size: [16, 16, 16]}\nreference_input: [1, 32, 32, 32]\n"
    )
    assert main(["run", str(study), "--backend", "local"]) == 0
    r = load_results(tmp_path / "v")
    done = r.frame[r.frame["state"] == "COMPLETE"]
    assert len(done) >= 1 and (done["spatial_dims"] == 3).all()
    # M_E1 of a volume: width x D x H x W at the reference input, float32
    assert (done["m_e1_bytes"] == done["width"] * 32**3 * 4).all()
    assert main(["dashboard", str(tmp_path / "v")]) == 0
    number = int(done["number"].iloc[0])
    capsys.readouterr()
    assert main(["export", str(tmp_path / "v"), "--trial", str(number), "--out", str(tmp_path / "out")]) == 0
    bundle = next((tmp_path / "out").iterdir())
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "1x32x32x32" in card and "traced at 16x16x16" in card
    checks = json.loads((bundle / "checks.json").read_text())
    assert all(v < 1e-4 for v in checks.values())
