"""Cost model: skip-memory anchors, real-tensor agreement, counters, profile() and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import small_spec

from skipsearch import ArchSpec, build_model, list_blocks, list_presets, preset
from skipsearch.cli import main
from skipsearch.costs import count_flops, count_macs
from skipsearch.costs.memory import analytic_timeline, measure
from skipsearch.costs.profile import profile

PLAIN_TIMELINE = [1, 1.5, 1.75, 1.875, 1.875, 1.75, 1.5, 1, 0]


def me1_timeline(p) -> list[float]:
    return [s.skip_bytes / p.m_e1_bytes for s in p.timeline]


@pytest.mark.parametrize("block", list_blocks())
@pytest.mark.parametrize("down", ["conv", "maxpool"])
def test_plain_four_level_doubling_holds_1_875(block, down):
    spec = small_spec(block, "plain", 4, down=down, width=16)
    p = profile(spec, (3, 64, 96), counts=False)
    assert p.skip_memory_me1 == 1.875
    assert me1_timeline(p) == PLAIN_TIMELINE


@pytest.mark.parametrize("target", ["min", "mid", "max"])
def test_unetmm_holds_one_eighth_and_saves_93_3_percent(target):
    p = profile(preset(f"unetmm-{target}"), counts=False)
    base = profile(preset("nafnet-sidd-w32"), counts=False)
    assert p.skip_memory_me1 == 0.125
    assert p.skip_memory_bytes == 1 * 2**20  # M_E1 / 8 = 1 MiB at 256x256, fp32
    assert round(1 - p.skip_memory_bytes / base.skip_memory_bytes, 3) == 0.933


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_dense_matches_hand_derivation(depth):
    # at the bottleneck level m (1-based) holds X(m, 0..depth-m): depth - m + 1 nodes of
    # w_m x A_m elements = M_E1 / 2^(m-1) each, with doubling widths
    expected = sum((depth - m + 1) / 2 ** (m - 1) for m in range(1, depth + 1))
    p = profile(small_spec("conv", "dense", depth), (3, 64, 64), counts=False)
    assert p.skip_memory_me1 == expected
    assert expected == {2: 2.5, 3: 4.25, 4: 6.125, 5: 8.0625}[depth]


def test_none_holds_nothing():
    p = profile(small_spec("naf", "none", 4), (3, 40, 40), counts=False)
    assert p.skip_memory_bytes == 0 and all(s.skip_bytes == 0 for s in p.timeline)


def test_sdi_holds_one_reduced_set():
    p = profile(preset("sdi-naf-w32"), counts=False)  # c = C = 32: 1 + 1/4 + 1/16 + 1/64
    assert p.skip_memory_me1 == 1.328125


@pytest.mark.parametrize(
    "spec",
    [small_spec(b, s, 3) for b in ("naf", "cmrf") for s in ("plain", "msiam_iem", "sdi", "dense")] + [preset("tiny-naf")],
    ids=lambda s: s.summary(),
)
def test_real_cpu_tensors_agree_with_analytic(spec):
    torch.manual_seed(0)
    model = build_model(spec).eval()
    shape = (1, 3, 45, 38)
    measured = measure(model, torch.randn(shape))
    analytic = analytic_timeline(spec, shape, itemsize=4)
    assert [m.skip_bytes for m in measured.timeline] == [a.skip_bytes for a in analytic]


def test_bfloat16_halves_the_bytes():
    a = profile(preset("unet"), (1, 64, 64), counts=False)
    b = profile(preset("unet"), (1, 64, 64), dtype="bfloat16", counts=False)
    assert b.skip_memory_bytes * 2 == a.skip_memory_bytes and b.skip_memory_me1 == a.skip_memory_me1


def test_batch_scales_linearly():
    a = profile(preset("tiny-naf"), (3, 32, 32), counts=False)
    b = profile(preset("tiny-naf"), (3, 32, 32), batch=3, counts=False)
    assert b.skip_memory_bytes == 3 * a.skip_memory_bytes and b.peak_activation_bytes == 3 * a.peak_activation_bytes


def test_peak_activation_is_at_least_skip_memory_plus_main_path():
    p = profile(preset("nafnet-sidd-w32"), counts=False)
    assert p.peak_activation_bytes >= max(s.live_bytes for s in p.timeline) > p.skip_memory_bytes


@pytest.mark.parametrize("name", list_presets())
def test_single_pass_counts_equal_thop_and_flopcountermode(name):
    spec = preset(name)
    sides = (64,) * spec.spatial_dims  # 64 x 64 images, 64^3 volumes
    p = profile(spec, (spec.in_channels, *sides))
    model = build_model(spec, "meta")
    shape = (1, spec.in_channels, *sides)
    assert p.macs == count_macs(model, shape, "meta")
    assert p.flops == count_flops(model, shape, "meta")


@pytest.mark.parametrize("skip", ["none", "plain", "dense"])
def test_thop_macs_times_two_equal_flops_on_conv_only_networks(skip):
    # convolutions (incl. transposed), ReLU, max-pool: thop and FlopCounterMode see the same work
    spec = ArchSpec(in_channels=1, width=8, block="conv", skip=skip)
    model = build_model(spec)
    shape = (1, 1, 48, 64)
    assert 2 * count_macs(model, shape) == count_flops(model, shape)
    assert 2 * count_macs(build_model(preset("unet")), (1, 1, 64, 64)) == count_flops(build_model(preset("unet")), (1, 1, 64, 64))


def test_thop_does_not_leave_buffers_on_the_model():
    model = build_model(preset("tiny-naf"))
    keys = set(model.state_dict())
    count_macs(model, (1, 3, 32, 32))
    profile(preset("tiny-naf"), (3, 32, 32))
    assert set(model.state_dict()) == keys


def test_fresh_process_measures_exactly():
    # torch's first-use paths once kept a full-resolution tensor alive in a fresh process
    code = (
        "from skipsearch import preset; from skipsearch.costs.profile import profile; "
        "p = profile(preset('unetmm-min')); print(p.skip_memory_bytes, p.skip_memory_analytic_bytes)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1] == str(2**20)


def test_profile_to_dict_has_the_documented_keys():
    d = profile(preset("tiny-cmrf"), (3, 32, 32)).to_dict()
    for key in ("params", "macs", "flops", "skip_memory_bytes", "skip_memory_me1", "peak_activation_bytes", "timeline"):
        assert key in d
    assert d["timeline"][0]["stage"] == "encoder 1" and {"skip_bytes", "live_bytes"} <= set(d["timeline"][0])
    json.dumps(d)


def test_cli_profile_json(capsys):
    assert main(["profile", "--preset", "unetmm-max", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["skip_memory_me1"] == 0.125 and d["params"] == 29_253_900 and len(d["timeline"]) == 9


def test_cli_profile_table_and_spec_from_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(preset("unet").to_json()))
    assert main(["profile", "--spec", "-", "--input", "1x64x64"]) == 0
    out = capsys.readouterr().out
    assert "skip memory" in out and "1.875 M_E1" in out and "bottleneck" in out


BAD_CLI = [
    (["--preset", "tiny-naf", "--input", "3x256"], "is not CxHxW"),
    (["--preset", "tiny-naf", "--input", "1x64x64"], "1 channels, but the spec takes in_channels=3"),
    (["--preset", "tiny-naf", "--dtype", "int8"], "unknown dtype 'int8'"),
    (["--preset", "tiny-naf", "--device", "tpu"], "unknown device 'tpu'"),
    (["--spec", "/no/such/spec.json"], "/no/such/spec.json: spec file not found"),
]


@pytest.mark.parametrize("args, message", BAD_CLI)
def test_cli_profile_bad_input(args, message, capsys):
    assert main(["profile", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_invalid_spec_file_names_file_and_field(tmp_path, capsys):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"block": {"type": "cmrf", "n": 8}, "width": 20}))
    assert main(["profile", "--spec", str(f)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "field 'block.n'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cli_cuda_without_gpu(capsys):
    assert main(["profile", "--preset", "tiny-naf", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_measure_agrees_with_meta():
    spec = preset("unetmm-min")
    a = profile(spec, counts=False)
    b = profile(spec, device="cuda", counts=False)
    assert [s.skip_bytes for s in a.timeline] == [s.skip_bytes for s in b.timeline]
    assert b.cuda_peak_activation_bytes >= b.skip_memory_bytes
