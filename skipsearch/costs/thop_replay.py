"""thop's MAC rules replayed on shapes noted during the measured forward pass.

thop hooks modules and runs tensor code inside the hooks; inside a memory measurement that
would keep frames (and tensors) alive. So the measured pass only notes each module's input
and output shapes, and thop's rules (its table plus skipsearch's, costs/counts.py) run
afterwards on meta tensors, memoised by module configuration and shapes.
"""

from __future__ import annotations

import torch
from torch import nn

_THOP_CACHE: dict[tuple, float] = {}


def thop_rules(model: nn.Module) -> dict[nn.Module, object]:
    """thop's rule for each module that has one (thop's own sum stops at the first module
    with a rule on each path; ours has rules on leaves only)."""
    from thop.profile import register_hooks

    from .counts import RULES

    out = {}
    for m in model.modules():
        rule = RULES.get(type(m)) or register_hooks.get(type(m))
        if rule is not None and not isinstance(m, nn.Sequential | nn.ModuleList):
            out[m] = rule
    return out


def shape_hooks(rules: dict[nn.Module, object], seen: list) -> list:
    """Forward hooks that only note shapes: no tensor code may run inside the measured
    pass (torch's first-use paths can keep the caller's frames, and so tensors, alive)."""

    def hook(mod, inputs, output) -> None:
        shapes = tuple(tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor))
        seen.append((mod, shapes, tuple(output.shape), output.dtype))

    return [m.register_forward_hook(hook) for m in rules]


def thop_total(rules: dict[nn.Module, object], seen: list) -> int:
    """Apply thop's rules to the noted shapes (on meta tensors), memoised by module
    configuration and shapes."""
    total = 0.0
    for mod, shapes, out_shape, dtype in seen:
        key = (type(mod), mod.extra_repr(), getattr(mod, "bias", None) is not None, shapes, out_shape)
        if key not in _THOP_CACHE:
            xs = tuple(torch.empty(s, device="meta", dtype=dtype) for s in shapes)
            had = "total_ops" in mod._buffers
            mod.total_ops = torch.zeros(1, dtype=torch.float64)
            rules[mod](mod, xs, torch.empty(out_shape, device="meta", dtype=dtype))
            _THOP_CACHE[key] = float(mod.total_ops.item())
            if not had:
                del mod.total_ops
        total += _THOP_CACHE[key]
    return int(total)
