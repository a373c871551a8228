"""The classic U-Net / UNet++ unit: two 3x3 convs with ReLU."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import SpecError
from ..layers import nd
from .base import BLOCKS, BlockFamily


class ConvUnit(nn.Sequential):
    """conv3x3 [norm] act [dropout], `convs` times (the first maps c_in to c_out). The
    official UNet++ code: two convs, no norm, ReLU, dropout 0.5. nnU-Net: one conv per
    unit (a stage is two units), InstanceNorm (eps 1e-5, affine), LeakyReLU (0.01), and a
    conv bias in front of the norm too (`norm_bias`)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        norm: str = "none",
        dropout: float = 0.0,
        act: str = "relu",
        convs: int = 2,
        norm_bias: bool = False,
        dims: int = 2,
    ) -> None:
        layers: list[nn.Module] = []
        for c in [c_in, *[c_out] * (convs - 1)]:
            layers.append(nd("Conv", dims)(c, c_out, 3, padding=1, bias=norm == "none" or norm_bias))
            if norm == "batch":
                layers.append(nd("BatchNorm", dims)(c_out))
            elif norm == "instance":
                layers.append(nd("InstanceNorm", dims)(c_out, eps=1e-5, affine=True))
            layers.append(nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.01, inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


@BLOCKS.register("conv")
class Conv(BlockFamily):
    symbol = "square"  # plotly marker on the dashboard
    defaults = {"norm": "none", "dropout": 0.0, "act": "relu", "convs": 2, "norm_bias": False}
    optional = {"act": "relu", "convs": 2, "norm_bias": False}  # added later: left out of the JSON at these values
    merge, down, up, stem = "concat", "maxpool", "transposed", "none"
    block = ConvUnit

    @classmethod
    def check_width(cls, params: dict[str, Any], width: int, where: str) -> None:
        if params["norm"] not in NORMS:
            raise SpecError("block.norm", params["norm"], ", ".join(NORMS))
        if not 0.0 <= params["dropout"] < 1.0:
            raise SpecError("block.dropout", params["dropout"], "0 <= dropout < 1")
        if params["act"] not in ACTS:
            raise SpecError("block.act", params["act"], ", ".join(ACTS))
        if params["convs"] not in (1, 2):
            raise SpecError("block.convs", params["convs"], "1, 2 (convs per block)")

    @classmethod
    def arguments(cls, c_in: Any, c_out: Any, params: dict[str, Any], stride: Any = 1) -> dict[str, Any]:
        args = {"c_in": c_in, "c_out": c_out, "norm": params["norm"], "dropout": params["dropout"]}
        args.update({k: params[k] for k in cls.optional if params[k] != cls.optional[k]})  # only what differs
        return args


NORMS = ("none", "batch", "instance")
ACTS = ("relu", "leakyrelu")
