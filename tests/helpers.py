"""Shared test helpers."""

from __future__ import annotations

import torch
from torch import nn

from skipsearch.testing import small_spec  # noqa: F401 - re-exported for the tests


def call_order_tensors(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Parameters and buffers of every module, in the order modules are first called."""
    order: list[nn.Module] = []
    seen: set[int] = set()

    def pre(m: nn.Module, _inputs) -> None:
        if id(m) not in seen:
            seen.add(id(m))
            order.append(m)

    hooks = [m.register_forward_pre_hook(pre) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    out: list[torch.Tensor] = []
    for m in order:
        out += list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))
    return out


def transfer(src: nn.Module, dst: nn.Module, x: torch.Tensor) -> None:
    """Copy src's weights into dst, pairing tensors by execution order; shapes must agree."""
    a, b = call_order_tensors(src, x), call_order_tensors(dst, x)
    assert len(a) == len(b), (len(a), len(b))
    assert len(a) == len(list(src.parameters())) + len(list(src.buffers()))
    with torch.no_grad():
        for s, d in zip(a, b, strict=True):
            assert s.shape == d.shape, (s.shape, d.shape)
            d.copy_(s)


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Give every parameter random values (zero-initialised gates would hide differences)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.2)
