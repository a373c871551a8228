"""The down, up and stem operators: one table that builds each and knows its channels.

ArchSpec validates `down`, `up` and `stem` against these names; the model builds them from
here; a skip design that needs an up operator (UNet++'s nested nodes) takes it from here
too. An unknown name raises SpecError listing the valid ones (no silent fallback).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .layers import Interpolate
from .registry import Registry


@dataclass(frozen=True)
class Operator:
    """An operator as one line of torch code in `c_in` and `c_out`. The same line builds it
    here and is written into the standalone model.py of export bundles."""

    code: str  # e.g. "nn.Conv2d(c_in, c_out, 2, stride=2)"
    keeps_channels: bool  # True: outputs c_in channels (pooling, interpolation), else c_out
    description: str

    def __post_init__(self) -> None:
        factory = eval(f"lambda c_in, c_out: {self.code}", {"nn": nn, "Interpolate": Interpolate})  # our own constant code
        object.__setattr__(self, "_factory", factory)

    def build(self, c_in: int, c_out: int) -> nn.Module:
        return self._factory(c_in, c_out)

    def source(self, c_in: int | str = "c_in", c_out: int | str = "c_out") -> str:
        """The operator's code with its channels filled in (numbers or names)."""
        return self.code.replace("c_in", str(c_in)).replace("c_out", str(c_out))

    def channels(self, c_in: int, c_out: int) -> int:
        return c_in if self.keeps_channels else c_out


DOWN: Registry[Operator] = Registry("down operator", "down")
UP: Registry[Operator] = Registry("up operator", "up")
STEM: Registry[Operator] = Registry("stem", "stem")


def _add(registry: Registry[Operator], name: str, op: Operator) -> None:
    registry._entries[name] = op  # Operator records are frozen: no name attribute to set


_add(DOWN, "conv", Operator("nn.Conv2d(c_in, c_out, 2, stride=2)", False, "2x2 stride-2 conv (NAFNet)"))
_add(DOWN, "maxpool", Operator("nn.MaxPool2d(2, 2)", True, "2x2 max pooling (U-Net)"))
_add(
    UP,
    "pixelshuffle",
    Operator(
        "nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 1, bias=False), nn.PixelShuffle(2))",
        False,
        "1x1 conv (no bias) to 4 c_out, then PixelShuffle(2) (NAFNet)",
    ),
)
_add(UP, "transposed", Operator("nn.ConvTranspose2d(c_in, c_out, 2, stride=2)", False, "2x2 stride-2 transposed conv"))
for _mode in ("bicubic", "bilinear", "nearest"):
    _add(UP, _mode, Operator(f'Interpolate("{_mode}")', True, f"x2 {_mode} interpolation (TinyU-Net: bicubic)"))
_add(STEM, "conv", Operator("nn.Conv2d(c_in, c_out, 3, padding=1)", False, "3x3 conv to the first width"))
_add(STEM, "none", Operator("nn.Identity()", True, "none: the first level sees the image"))


def make_down(kind: str, c_in: int, c_out: int) -> nn.Module:
    return DOWN.get(kind).build(c_in, c_out)


def make_up(kind: str, c_in: int, c_out: int) -> nn.Module:
    return UP.get(kind).build(c_in, c_out)


def make_stem(kind: str, c_in: int, c_out: int) -> nn.Module:
    return STEM.get(kind).build(c_in, c_out)
