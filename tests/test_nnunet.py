"""The nnU-Net presets against dynamic-network-architectures' PlainConvUNet (nnU-Net v2's
own network code) built with the arguments nnU-Net plans: equal parameter counts and,
with its weights mapped onto ours one tensor each, equal float64 outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skipsearch import build_model, preset

dna = pytest.importorskip("dynamic_network_architectures.architectures.unet", reason="pip install dynamic-network-architectures")

FEATURES = {"nnunet-3d": [32, 64, 128, 256, 320, 320], "nnunet-2d": [32, 64, 128, 256, 512, 512]}
INPUT = {"nnunet-3d": (1, 1, 64, 32, 32), "nnunet-2d": (1, 1, 64, 96)}  # the bottleneck keeps 2+ voxels


def theirs(name: str) -> nn.Module:
    dims = 3 if name.endswith("3d") else 2
    conv, norm = (nn.Conv3d, nn.InstanceNorm3d) if dims == 3 else (nn.Conv2d, nn.InstanceNorm2d)
    return dna.PlainConvUNet(
        input_channels=1,
        n_stages=6,
        features_per_stage=FEATURES[name],
        conv_op=conv,
        kernel_sizes=3,
        strides=[1, 2, 2, 2, 2, 2],
        n_conv_per_stage=2,
        num_classes=2,
        n_conv_per_stage_decoder=2,
        conv_bias=True,
        norm_op=norm,
        norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=nn.LeakyReLU,
        nonlin_kwargs={"inplace": True},
        deep_supervision=False,
    )


def name_map(depth: int) -> list[tuple[str, str]]:
    """(their module, our module) for every conv, norm and transposed conv."""
    pairs = []

    def unit(their: str, our: str) -> None:
        pairs.extend([(f"{their}.conv", f"{our}.0"), (f"{their}.norm", f"{our}.1")])

    unit("encoder.stages.0.0.convs.0", "encoder.0.0")
    unit("encoder.stages.0.0.convs.1", "encoder.0.1")
    for s in range(1, depth + 1):  # stage s: its strided first conv is our down operator below level s
        unit(f"encoder.stages.{s}.0.convs.0", f"downs.{s - 1}")
        unit(f"encoder.stages.{s}.0.convs.1", f"encoder.{s}.0" if s < depth else "middle.0")
    for k in range(depth):  # decoder stage k is our decoder level depth - k (deepest first)
        level = depth - 1 - k
        unit(f"decoder.stages.{k}.convs.0", f"decoder.{level}.0")
        unit(f"decoder.stages.{k}.convs.1", f"decoder.{level}.1")
        pairs.append((f"decoder.transpconvs.{k}", f"ups.{level}"))
    pairs.append((f"decoder.seg_layers.{depth - 1}", "head"))
    return pairs


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["nnunet-2d", "nnunet-3d"])
def test_nnunet_preset_is_plain_conv_unet(name):
    spec = preset(name)
    ours, ref = build_model(spec).double().eval(), theirs(name).double().eval()
    unused = sum(_params(m) for m in ref.decoder.seg_layers[:-1])  # deep-supervision heads, built but not run
    assert _params(ours) == _params(ref) - unused
    mods_ref, mods_ours = dict(ref.named_modules()), dict(ours.named_modules())
    mapped = name_map(spec.depth)
    assert {o for _, o in mapped} | {""} >= {n for n, m in ours.named_modules() if any(True for _ in m.parameters(recurse=False))}
    torch.manual_seed(0)
    with torch.no_grad():
        for t, o in mapped:
            src, dst = mods_ref[t], mods_ours[o]
            assert type(src) is type(dst), (t, o)
            for p in src.parameters():
                p.copy_(torch.randn_like(p) * 0.2)
            dst.load_state_dict(src.state_dict())
        x = torch.randn(INPUT[name], dtype=torch.float64)
        assert torch.equal(ours(x), ref(x))


@pytest.mark.parametrize("name", ["nnunet-3d-unetmm", "nnunet-3d-sdi"])
def test_nnunet_variants_change_only_the_skips(name):
    base, variant = preset("nnunet-3d"), preset(name)
    assert variant.replace(skip="plain") == base
    p = build_model(variant, "meta")
    assert sum(t.numel() for t in p.parameters()) > 0
