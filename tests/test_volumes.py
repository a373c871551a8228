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
