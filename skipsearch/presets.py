"""Named ArchSpecs: the seed networks, reproduced exactly, and small ones for quick runs."""

from __future__ import annotations

from typing import Any

from .errors import SpecError
from .spec import ArchSpec

_NAF = {"block": "naf", "head": "restore", "in_channels": 3, "out_channels": 3}
_SIDD = {**_NAF, "enc_blocks": [2, 2, 4, 8], "mid_blocks": 12, "dec_blocks": [2, 2, 2, 2]}
# GoPro: the official option files use NAFNetLocal (TLC at inference, training crops 256)
_GOPRO = {
    **_NAF,
    "block": {"type": "naf", "tlc": True, "train_size": 256},
    "enc_blocks": [1, 1, 1, 28],
    "mid_blocks": 1,
    "dec_blocks": [1, 1, 1, 1],
}
_TINY = {"block": "naf", "depth": 3, "width": 8}
_KERAS = {"block": {"type": "conv", "dropout": 0.5}, "in_channels": 1, "out_channels": 1, "width": 32}

# nnU-Net v2's plain U-Net (dynamic-network-architectures' PlainConvUNet as nnU-Net plans it for
# 3d_fullres / 2d): six stages, two conv-InstanceNorm-LeakyReLU per stage, the first conv of
# each deeper stage strided (our down operator "nnunet"), transposed-conv up, conv bias,
# concatenated skips, no deep supervision. A level's two convs are two one-conv blocks.
_NNUNET_BLOCK = {"type": "conv", "norm": "instance", "act": "leakyrelu", "convs": 1, "norm_bias": True}
_NNUNET = {
    "block": _NNUNET_BLOCK,
    "depth": 5,
    "down": "nnunet",
    "up": "transposed",
    "enc_blocks": [2, 1, 1, 1, 1],  # stage 0: two convs; deeper stages: the strided conv (down) + one
    "mid_blocks": 1,
    "dec_blocks": 2,
    "in_channels": 1,
    "out_channels": 2,
}
_NNUNET_3D = {**_NNUNET, "spatial_dims": 3, "width": 32, "widths": [32, 64, 128, 256, 320, 320]}
_NNUNET_2D = {**_NNUNET, "width": 32, "widths": [32, 64, 128, 256, 512, 512]}

_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "nnunet-3d": ("nnU-Net v2 3d_fullres plain U-Net: 6 stages, 32-320 features, 1 channel in, 2 classes (exact)", _NNUNET_3D),
    "nnunet-2d": ("nnU-Net v2 2d plain U-Net: 6 stages, 32-512 features, 1 channel in, 2 classes (exact)", _NNUNET_2D),
    "nnunet-3d-unetmm": (
        # the intermediate target: at the minimum one, E' has K x 8^4 channels in a volume and
        # its 1x1 fuse conv alone 268 M weights (a 2-D network has 4^4 there)
        "nnunet-3d with UNet--'s MSIAM+IEM (aggregated map at the intermediate level 3, concatenated)",
        {**_NNUNET_3D, "skip": {"type": "msiam_iem", "target": "mid"}},
    ),
    "nnunet-3d-sdi": ("nnunet-3d with U-Net v2's SDI skips (c = 32)", {**_NNUNET_3D, "skip": "sdi"}),
    "unet3d": (
        "3-D U-Net after Cicek et al. 2016: 4 levels, 2x(conv3 BN ReLU), max-pool, transposed up, 3 classes"
        " (each level's convs at its width 64-512; the paper halves the first encoder conv)",
        {
            "block": {"type": "conv", "norm": "batch"},
            "depth": 3,
            "width": 64,
            "spatial_dims": 3,
            "in_channels": 3,
            "out_channels": 3,
        },
    ),
    "nafnet-sidd-w32": ("NAFNet, SIDD denoising configuration, width 32 (official)", {**_SIDD, "width": 32}),
    "nafnet-sidd-w64": ("NAFNet, SIDD denoising configuration, width 64 (official)", {**_SIDD, "width": 64}),
    "nafnet-gopro-w32": ("NAFNet, GoPro deblurring configuration, width 32 (official, TLC at test)", {**_GOPRO, "width": 32}),
    "nafnet-gopro-w64": ("NAFNet, GoPro deblurring configuration, width 64 (official, TLC at test)", {**_GOPRO, "width": 64}),
    "tinyunet": (
        "TinyU-Net: CMRF blocks (N=8), max-pool, bicubic up, concat, no bottleneck block (official)",
        {"block": {"type": "cmrf", "n": 8}, "width": 64, "widths": [64, 128, 256, 512, 512], "mid_blocks": 0, "out_channels": 2},
    ),
    "unet": ("U-Net of the official UNet++ Keras code: filters 32-512, 1 channel in, 1 class", _KERAS),
    "unetpp": ("UNet++ of the official Keras code: dense nested skips, no deep supervision", {**_KERAS, "skip": "dense"}),
    "unetmm-min": (
        "UNet--: nafnet-sidd-w32 with MSIAM+IEM, aggregated map at the minimum resolution",
        {**_SIDD, "width": 32, "skip": {"type": "msiam_iem", "target": "min"}},
    ),
    "unetmm-mid": (
        "UNet--: nafnet-sidd-w32 with MSIAM+IEM, aggregated map at H/4",
        {**_SIDD, "width": 32, "skip": {"type": "msiam_iem", "target": "mid"}},
    ),
    "unetmm-max": (
        "UNet--: nafnet-sidd-w32 with MSIAM+IEM, aggregated map at full resolution",
        {**_SIDD, "width": 32, "skip": {"type": "msiam_iem", "target": "max"}},
    ),
    "sdi-naf-w32": ("nafnet-sidd-w32 with U-Net v2's SDI skips (c = 32)", {**_SIDD, "width": 32, "skip": "sdi"}),
    "tiny-naf": ("a small NAF U-Net for quick runs: depth 3, width 8", {"block": "naf", "depth": 3, "width": 8}),
    # the same small network with each of the other skip designs: seeds that put every design on a study's plot
    "tiny-naf-none": ("tiny-naf without skip connections", {**_TINY, "skip": "none"}),
    "tiny-naf-unetmm": (
        "tiny-naf with UNet--'s MSIAM+IEM (aggregated map at the minimum resolution)",
        {**_TINY, "skip": "msiam_iem"},
    ),
    "tiny-naf-sdi": ("tiny-naf with U-Net v2's SDI (c = 8)", {**_TINY, "skip": {"type": "sdi", "channels": 8}}),
    "tiny-naf-dense": ("tiny-naf with UNet++'s dense nested skips", {**_TINY, "skip": "dense"}),
    "tiny-naf-ag": ("tiny-naf with Attention U-Net's gates on the skips", {**_TINY, "skip": "attention_gate"}),
    "tiny-cmrf": (
        "a small CMRF U-Net for quick runs: depth 3, width 16, N = 4",
        {"block": {"type": "cmrf", "n": 4}, "depth": 3, "width": 16},
    ),
}


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def describe_preset(name: str) -> str:
    preset(name)
    return _PRESETS[name][0]


def preset(name: str) -> ArchSpec:
    """The ArchSpec of a named preset."""
    if name not in _PRESETS:
        import difflib

        close = difflib.get_close_matches(name, _PRESETS, n=1)
        raise SpecError("preset", name, ", ".join(list_presets()), f"did you mean {close[0]!r}?" if close else "unknown preset")
    return ArchSpec.from_dict(_PRESETS[name][1])
