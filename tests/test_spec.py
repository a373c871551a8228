"""ArchSpec: defaults, canonical JSON, arch id, and one test per validation rule."""

from __future__ import annotations

import json

import pytest

from skipsearch import ArchSpec, SpecError, preset


def test_minimal_components_are_complete():
    spec = ArchSpec(block={"type": "cmrf"}, skip={"type": "sdi"}, width=32)
    assert spec.block.to_dict() == {"type": "cmrf", "n": 8, "shortcut": True}
    assert spec.skip.to_dict() == {"type": "sdi", "channels": 32, "merge": "concat"}
    assert (spec.down, spec.up, spec.stem) == ("maxpool", "bicubic", "none")


def test_family_defaults_resolve_operators_and_merge():
    spec = ArchSpec(block="naf")
    assert (spec.down, spec.up, spec.stem, spec.skip["merge"]) == ("conv", "pixelshuffle", "conv", "add")


def test_dict_has_required_top_level_keys():
    d = ArchSpec().to_dict()
    for key in (
        "in_channels",
        "out_channels",
        "depth",
        "width",
        "block",
        "skip",
        "enc_blocks",
        "mid_blocks",
        "dec_blocks",
        "down",
        "up",
        "head",
        "schema",
    ):
        assert key in d


def test_arch_id_is_canonical():
    a = ArchSpec(width=16)
    b = ArchSpec.from_dict({"widths": [16, 32, 64, 128, 256], "skip": {"type": "plain", "merge": "concat"}})
    assert a == b and a.arch_id == b.arch_id
    assert ArchSpec(width=24).arch_id != a.arch_id
    assert len(a.arch_id) == 12


def test_arch_id_stable_across_processes():
    # a fixed string: changing it means every stored study's ids change, bump the schema then
    assert preset("unet").arch_id == ArchSpec.from_json(preset("unet").to_json()).arch_id
    assert json.loads(preset("unet").to_json())["schema"] == 1


def test_custom_widths_round_trip():
    spec = ArchSpec(width=8, widths=(8, 16, 16, 32, 32))
    assert spec.level_widths == (8, 16, 16, 32, 32)
    assert ArchSpec.from_json(spec.to_json()) == spec


def test_replace_keeps_validation():
    with pytest.raises(SpecError, match="depth"):
        ArchSpec().replace(depth=9)


def test_msiam_paper_operating_point_channels():
    from skipsearch import build_model

    model = build_model(preset("unetmm-min"))
    assert [seq[0].out_channels for seq in model.skip.reduce] == [1, 4, 16, 64]
    assert model.skip.fuse.out_channels == 256  # E' = 256 x H/8 x W/8 = M_E1 / 8 at width 32


BAD = [
    # (spec dict, field named, fragment of the allowed-values text)
    ({"block": "nafnet"}, "block.type", "cmrf, conv, naf"),
    ({"skip": "unet++"}, "skip.type", "dense, msiam_iem, none, plain, sdi"),
    ({"block": {"type": "cmrf", "n": 8}, "width": 24}, "block.n", "divisible by 2n (2n = 16)"),
    ({"block": {"type": "cmrf", "n": 1}}, "block.n", "integer 2-64"),
    ({"depth": 6}, "depth", "2-5"),
    ({"depth": 1}, "depth", "2-5"),
    ({"enc_blocks": [1, 2]}, "enc_blocks", "list of 4 integers"),
    ({"dec_blocks": [1, 1, 1, -1]}, "dec_blocks[3]", "integer 0-64"),
    ({"widths": [32, 64]}, "widths", "list of 5 integers"),
    ({"width": 16, "widths": [32, 64, 128, 256, 512]}, "width", "32 (= widths[0])"),
    ({"block": {"type": "naf", "dw_expand": 1}, "width": 9}, "block.dw_expand", "width x expand even"),
    ({"block": {"type": "naf", "dropout": 1.5}}, "block.dropout", "0 <= dropout < 1"),
    ({"block": {"type": "conv", "norm": "group"}}, "block.norm", "none, batch"),
    ({"block": {"type": "cmrf", "groups": 4}}, "block.groups", "n, shortcut"),
    ({"block": {"type": "cmrf", "n": "8"}}, "block.n", "a int"),
    ({"skip": {"type": "sdi", "channels": 0}}, "skip.channels", "integer 1-4096"),
    ({"skip": {"type": "dense", "node_blocks": 0}}, "skip.node_blocks", "integer 1-16"),
    ({"skip": {"type": "msiam_iem", "target": "middle"}}, "skip.target", "min, mid, max"),
    ({"skip": {"type": "msiam_iem", "target": "mid"}, "depth": 2}, "skip.target", "min, max"),
    ({"skip": {"type": "msiam_iem", "target": "mid", "level": 4}}, "skip.level", "intermediate encoder level 2-3"),
    ({"skip": {"type": "msiam_iem", "target": "min", "level": 2}}, "skip.level", "4 (target 'min' fixes the level)"),
    ({"skip": {"type": "msiam_iem", "memory": 0}}, "skip.memory", "0 < memory <= 2"),
    ({"skip": {"type": "plain", "merge": "sum"}}, "skip.merge", "auto, add, concat"),
    ({"block": "cmrf", "skip": {"type": "plain", "merge": "add"}}, "skip.merge", "concat, or an up operator"),
    ({"down": "avgpool"}, "down", "conv, maxpool"),
    ({"up": "deconv"}, "up", "bicubic, bilinear, nearest, pixelshuffle, transposed"),
    ({"stem": "patch"}, "stem", "conv, none"),
    ({"head": "cls"}, "head", "seg, restore"),
    ({"head": "restore", "in_channels": 3, "out_channels": 1}, "out_channels", "3 (= in_channels)"),
    ({"in_channels": 0}, "in_channels", "integer 1-4096"),
    ({"enc_blocks": 100_000}, "enc_blocks[0]", "integer 0-64"),  # would build 400,000 blocks
    ({"block": {"type": "cmrf", "n": 4096}, "width": 8192}, "block.n", "integer 2-64"),
    ({"width": 2.5}, "width", "integer >= 1"),
    ({"dept": 4}, "dept", "in_channels"),
    ({"schema": 99}, "schema", "1"),
    ({"block": 7}, "block", 'an object with a "type" key'),
]


@pytest.mark.parametrize("data, field, allowed", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_validation_message(data, field, allowed):
    with pytest.raises(SpecError) as info:
        ArchSpec.from_dict(data)
    err = info.value
    assert err.field == field
    assert allowed in err.allowed
    msg = str(err)
    assert f"field '{field}'" in msg and "allowed:" in msg and repr(err.value) in msg


def test_unknown_field_suggests_closest():
    with pytest.raises(SpecError, match="did you mean 'depth'"):
        ArchSpec.from_dict({"dept": 4})


def test_unknown_name_suggests_closest():
    with pytest.raises(SpecError, match="did you mean 'dense'"):
        ArchSpec(skip="dens")


def test_bad_json():
    with pytest.raises(SpecError, match="valid JSON"):
        ArchSpec.from_json("{not json")


def test_unknown_preset_lists_names():
    with pytest.raises(SpecError, match="nafnet-sidd-w32") as info:
        preset("nafnet")
    assert info.value.field == "preset"
