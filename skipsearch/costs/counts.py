"""Parameter, MAC and FLOP counts.

MACs are counted the way thop counts them (what papers usually quote; some quote FLOPs
as 2 x thop MACs, e.g. TinyU-Net) with rules registered for this project's own leaf
modules and a corrected rule for transposed convs (thop 0.1.1 charges every output pixel
the whole kernel, 4x too much for the 2x2 stride-2 up-convs of U-Net). FLOPs come from
torch's FlopCounterMode, exact for every convolution and matmul (2 per MAC) and blind
to everything else. thop leaves buffers on the modules it profiles, so it only ever
sees a deep copy.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..layers import Interpolate, LayerNorm2d, SimpleGate


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _add(m: nn.Module, ops: int) -> None:
    m.total_ops += torch.DoubleTensor([int(ops)])


def _layer_norm(m: nn.Module, x: tuple[torch.Tensor], y: torch.Tensor) -> None:
    _add(m, 4 * x[0].numel())  # normalise (2) + affine (2), as thop charges BatchNorm


def _gate(m: nn.Module, x: tuple[torch.Tensor], y: torch.Tensor) -> None:
    _add(m, y.numel())


def _zero(m: nn.Module, x: tuple[torch.Tensor], y: torch.Tensor) -> None:
    _add(m, 0)  # resizing is not arithmetic in thop's convention (it skips F.interpolate)


def _transposed(m: nn.ConvTranspose2d, x: tuple[torch.Tensor], y: torch.Tensor) -> None:
    # every input pixel meets every kernel tap once
    _add(m, x[0].numel() * m.out_channels // m.groups * m.weight.shape[2:].numel())


RULES = {
    LayerNorm2d: _layer_norm,
    SimpleGate: _gate,
    Interpolate: _zero,
    nn.ConvTranspose2d: _transposed,
    nn.ConvTranspose3d: _transposed,
}


def _example(model: nn.Module, shape: Sequence[int], device: str | torch.device) -> torch.Tensor:
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    return torch.zeros(*shape, device=device, dtype=dtype)


def count_macs(model: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu") -> int:
    """MACs of one forward pass at `input_shape` (N, C, H, W), as thop counts them."""
    from thop import profile as thop_profile

    clone = copy.deepcopy(model).to(device)
    with contextlib.redirect_stdout(io.StringIO()):  # thop prints on every unknown module
        macs, _ = thop_profile(clone, inputs=(_example(clone, input_shape, device),), custom_ops=RULES, verbose=False)
    return int(macs)


def count_flops(model: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu") -> int:
    """FLOPs of convolutions and matmuls in one forward pass (torch's FlopCounterMode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(_example(model, input_shape, device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
