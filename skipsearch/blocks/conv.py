"""The classic U-Net / UNet++ unit: two 3x3 convs with ReLU."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import SpecError
from .base import BLOCKS, BlockFamily


class ConvUnit(nn.Sequential):
    """conv3x3 [BN] ReLU [dropout], twice. The official UNet++ code has no BN and dropout 0.5."""

    def __init__(self, c_in: int, c_out: int, norm: str = "none", dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        for c in (c_in, c_out):
            layers.append(nn.Conv2d(c, c_out, 3, padding=1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


@BLOCKS.register("conv")
class Conv(BlockFamily):
    symbol = "square"  # plotly marker on the dashboard
    defaults = {"norm": "none", "dropout": 0.0}
    merge, down, up, stem = "concat", "maxpool", "transposed", "none"
    block = ConvUnit

    @classmethod
    def check_width(cls, params: dict[str, Any], width: int, where: str) -> None:
        if params["norm"] not in ("none", "batch"):
            raise SpecError("block.norm", params["norm"], "none, batch")
        if not 0.0 <= params["dropout"] < 1.0:
            raise SpecError("block.dropout", params["dropout"], "0 <= dropout < 1")

    @classmethod
    def arguments(cls, c_in: Any, c_out: Any, params: dict[str, Any], stride: Any = 1) -> dict[str, Any]:
        return {"c_in": c_in, "c_out": c_out, "norm": params["norm"], "dropout": params["dropout"]}
