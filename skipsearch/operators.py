"""The down, up and stem operators: one table that builds each and knows its channels.

ArchSpec validates `down`, `up` and `stem` against these names; the model builds them from
here; a skip design that needs an up operator (UNet++'s nested nodes) takes it from here
too. An unknown name raises SpecError listing the valid ones (no silent fallback).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .layers import Interpolate, PixelShuffle3d
from .registry import Registry


@dataclass(frozen=True)
class Operator:
    """An operator as one line of torch code in `c_in` and `c_out`. The same line builds it
    here and is written into the standalone model.py of export bundles. `code3` is its
    line for volumes (None: it has no 3-D form, e.g. bicubic; `in_3d` then names the
    operator a block family's default turns into there)."""

    code: str  # e.g. "nn.Conv2d(c_in, c_out, 2, stride=2)"
    keeps_channels: bool  # True: outputs c_in channels (pooling, interpolation), else c_out
    description: str
    code3: str | None = None
    in_3d: str | None = None

    def __post_init__(self) -> None:
        names = {"nn": nn, "Interpolate": Interpolate, "PixelShuffle3d": PixelShuffle3d}  # our own constant code
        factories = {d: eval(f"lambda c_in, c_out: {c}", names) for d, c in ((2, self.code), (3, self.code3)) if c}
        object.__setattr__(self, "_factories", factories)

    def build(self, c_in: int, c_out: int, dims: int = 2) -> nn.Module:
        return self._factories[dims](c_in, c_out)

    def source(self, c_in: int | str = "c_in", c_out: int | str = "c_out", dims: int = 2) -> str:
        """The operator's code with its channels filled in (numbers or names)."""
        code = self.code if dims == 2 else self.code3
        return code.replace("c_in", str(c_in)).replace("c_out", str(c_out))

    def channels(self, c_in: int, c_out: int) -> int:
        return c_in if self.keeps_channels else c_out

    def has(self, dims: int) -> bool:
        return dims in self._factories


DOWN: Registry[Operator] = Registry("down operator", "down")
UP: Registry[Operator] = Registry("up operator", "up")
STEM: Registry[Operator] = Registry("stem", "stem")


def _add(registry: Registry[Operator], name: str, op: Operator) -> None:
    registry._entries[name] = op  # Operator records are frozen: no name attribute to set


_add(
    DOWN,
    "conv",
    Operator("nn.Conv2d(c_in, c_out, 2, stride=2)", False, "2x2 stride-2 conv (NAFNet)", "nn.Conv3d(c_in, c_out, 2, stride=2)"),
)
_add(
    DOWN,
    "nnunet",
    Operator(
        "nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.InstanceNorm2d(c_out, eps=1e-5, affine=True),"
        " nn.LeakyReLU(0.01, inplace=True))",
        False,
        "nnU-Net's downsampling: the first conv of a stage, 3x3 stride 2, InstanceNorm, LeakyReLU",
        "nn.Sequential(nn.Conv3d(c_in, c_out, 3, stride=2, padding=1), nn.InstanceNorm3d(c_out, eps=1e-5, affine=True),"
        " nn.LeakyReLU(0.01, inplace=True))",
    ),
)
_add(DOWN, "maxpool", Operator("nn.MaxPool2d(2, 2)", True, "2x2 max pooling (U-Net)", "nn.MaxPool3d(2, 2)"))
_add(
    UP,
    "pixelshuffle",
    Operator(
        "nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 1, bias=False), nn.PixelShuffle(2))",
        False,
        "1x1 conv (no bias) to 4 c_out, then PixelShuffle(2) (NAFNet); 8 c_out and a 3-D shuffle for volumes",
        "nn.Sequential(nn.Conv3d(c_in, 8 * c_out, 1, bias=False), PixelShuffle3d(2))",
    ),
)
_add(
    UP,
    "transposed",
    Operator(
        "nn.ConvTranspose2d(c_in, c_out, 2, stride=2)",
        False,
        "2x2 stride-2 transposed conv",
        "nn.ConvTranspose3d(c_in, c_out, 2, stride=2)",
    ),
)
for _mode in ("bicubic", "bilinear"):
    _add(
        UP, _mode, Operator(f'Interpolate("{_mode}")', True, f"x2 {_mode} interpolation (TinyU-Net: bicubic)", None, "trilinear")
    )
_add(UP, "nearest", Operator('Interpolate("nearest")', True, "x2 nearest interpolation", 'Interpolate("nearest")'))
_add(UP, "trilinear", Operator("", True, "x2 trilinear interpolation (volumes only)", 'Interpolate("trilinear")'))
_add(
    STEM,
    "conv",
    Operator(
        "nn.Conv2d(c_in, c_out, 3, padding=1)", False, "3x3 conv to the first width", "nn.Conv3d(c_in, c_out, 3, padding=1)"
    ),
)
_add(STEM, "none", Operator("nn.Identity()", True, "none: the first level sees the image", "nn.Identity()"))


def make_down(kind: str, c_in: int, c_out: int, dims: int = 2) -> nn.Module:
    return DOWN.get(kind).build(c_in, c_out, dims)


def make_up(kind: str, c_in: int, c_out: int, dims: int = 2) -> nn.Module:
    return UP.get(kind).build(c_in, c_out, dims)


def make_stem(kind: str, c_in: int, c_out: int, dims: int = 2) -> nn.Module:
    return STEM.get(kind).build(c_in, c_out, dims)
