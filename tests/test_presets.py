"""Presets that claim to be official networks reproduce them exactly.

Three independent checks per network: (1) the parameter count equals the official
network's (published totals where the official code prints them, else an independent
transcription in reference_nets.py); (2) loading the transcription's weights into the
preset gives the same outputs; (3) thop MACs at 256x256 are within 2 % of a hand
derivation from the architecture's definition (convolutions plus the norm and gate terms
thop charges).
"""

from __future__ import annotations

import pytest
import reference_nets as ref
import torch
from helpers import randomize, transfer

from skipsearch import build_model, list_presets, preset
from skipsearch.costs import count_macs, count_params

HW = 256 * 256

# parameter totals printed by the official code (UNet++ Keras helper_functions.py) or
# quoted with the official configs (NAFNet GoPro: 67.9 M / 17.1 M; TinyU-Net: 0.48 M)
PUBLISHED = {
    "unet": (7_759_521, 0),
    "unetpp": (9_041_601, 0),
    "nafnet-gopro-w64": (67.9e6, 0.05e6),
    "nafnet-gopro-w32": (17.1e6, 0.05e6),
    "tinyunet": (0.48e6, 0.005e6),
}

NAF, reference = ref.NAF, ref.reference


OFFICIAL = [*NAF, "tinyunet", "unet", "unetpp"]


# ---------------------------------------------------------------- hand-derived MACs
def naf_block_macs(c: int, area: int) -> float:
    convs = 2 * c * c + 9 * 2 * c + c * c + 2 * c * c + c * c  # conv1..conv5 per pixel
    return (convs + 2 * 4 * c + 2 * c) * area  # + two LayerNorms (4/elem) + two gates


def nafnet_macs(width: int, enc: list[int], mid: int, dec: list[int]) -> float:
    total = 9 * 3 * width * HW * 2  # intro and ending 3x3 convs
    c, area = width, HW
    for n in enc:
        total += n * naf_block_macs(c, area) + 4 * c * 2 * c * area / 4  # blocks, 2x2 s2 down
        c, area = 2 * c, area // 4
    total += mid * naf_block_macs(c, area)
    for n in dec:
        total += c * 2 * c * area  # 1x1 conv before PixelShuffle
        c, area = c // 2, area * 4
        total += n * naf_block_macs(c, area)
    return total


def cmrf_macs(c1: int, c2: int, area: int, n: int = 8) -> float:
    pw1 = (c1 * c2 / n + 4 * c2 / n) * area
    dws = (n - 1) * (9 + 4) * c2 / (2 * n) * area
    pw2 = (c2 / 2 * c2 + 4 * c2) * area
    return pw1 + dws + pw2


def tinyunet_macs() -> float:
    ch, total, area, c_prev = [64, 128, 256, 512], 0.0, HW, 3
    for c in ch:
        total += cmrf_macs(c_prev, c, area)
        c_prev, area = c, area // 4
    c_deep = 512
    for c in reversed(ch):
        area *= 4
        total += cmrf_macs(c_deep + c, c, area)
        c_deep = c
    return total + 64 * 2 * HW


def unit_macs(c1: int, c2: int, area: int) -> float:
    return 9 * (c1 * c2 + c2 * c2) * area


def unet_macs(dense: bool) -> float:
    f = ref.F_KERAS
    area = [HW // 4**i for i in range(5)]
    total = unit_macs(1, f[0], area[0]) + sum(unit_macs(f[i - 1], f[i], area[i]) for i in range(1, 5))
    for i in range(4):
        # U-Net: one decoder node per level; UNet++: 4 - i nested nodes, node j sees j + 1 inputs
        for j in range(1, 5 - i) if dense else [4 - i]:
            inputs = j + 1 if dense else 2
            total += f[i + 1] * f[i] * 4 * area[i + 1] + unit_macs(inputs * f[i], f[i], area[i])
    return total + f[0] * HW


def expected_macs(name: str) -> float:
    if name in NAF:
        return nafnet_macs(*NAF[name])
    return {"tinyunet": tinyunet_macs, "unet": lambda: unet_macs(False), "unetpp": lambda: unet_macs(True)}[name]()


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("name", OFFICIAL)
def test_params_equal_reference(name):
    with torch.device("meta"):
        ours, theirs = build_model(preset(name)), reference(name)
    assert count_params(ours) == count_params(theirs)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_params_match_published(name):
    with torch.device("meta"):
        n = count_params(build_model(preset(name)))
    expected, tol = PUBLISHED[name]
    assert abs(n - expected) <= tol, n


@pytest.mark.parametrize("name", OFFICIAL)
def test_macs_within_2_percent_of_hand_derivation(name):
    spec = preset(name)
    with torch.device("meta"):
        model = build_model(spec)
    macs = count_macs(model, (1, spec.in_channels, 256, 256), device="meta")
    expected = expected_macs(name)
    assert abs(macs - expected) / expected < 0.02, (macs, expected)


@pytest.mark.parametrize(
    "name, size",
    [
        ("nafnet-sidd-w32", (45, 70)),
        ("nafnet-gopro-w32", (32, 48)),
        ("tinyunet", (64, 64)),
        ("unet", (48, 64)),
        ("unetpp", (48, 64)),
    ],
)
def test_outputs_equal_reference(name, size):
    torch.manual_seed(0)
    spec = preset(name)
    # float64: 36 randomised blocks amplify float32 summation-order noise
    theirs, ours = reference(name).double().eval(), build_model(spec).double().eval()
    randomize(theirs)
    x = torch.randn(1, spec.in_channels, *size, dtype=torch.float64)
    transfer(theirs, ours, x)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-9, atol=1e-9)


def test_unetmm_presets_are_nafnet_with_msiam():
    base = preset("nafnet-sidd-w32")
    for target in ("min", "mid", "max"):
        spec = preset(f"unetmm-{target}")
        assert spec.skip.type == "msiam_iem" and spec.skip["target"] == target
        assert spec.replace(skip="plain") == base
    assert preset("sdi-naf-w32").replace(skip="plain") == base


def test_every_preset_builds_and_has_unique_id():
    ids = {preset(n).arch_id for n in list_presets()}
    assert len(ids) == len(list_presets())
