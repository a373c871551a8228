"""Attention U-Net's gates: the coefficient is computed from the skip and the decoder."""

from __future__ import annotations

import torch

from skipsearch import build_model
from skipsearch.skips.attention_gate import AttentionGate
from skipsearch.testing import small_spec


def test_gate_is_additive_attention():
    torch.manual_seed(0)
    gate = AttentionGate(8, 6, 4)
    x, g = torch.randn(2, 8, 5, 7), torch.randn(2, 6, 5, 7)
    q = torch.relu(torch.einsum("oc,nchw->nohw", gate.w_x.weight[:, :, 0, 0], x) + gate.w_g(g))
    alpha = torch.sigmoid(gate.psi(q))
    assert alpha.shape == (2, 1, 5, 7) and alpha.min() > 0 and alpha.max() < 1
    torch.testing.assert_close(gate(x, g), x * alpha)


def test_a_closed_gate_turns_the_skip_off():
    """psi = -inf everywhere: alpha = 0, so an add-merge network equals one without skips."""
    spec = small_spec("naf", "attention_gate", 3)
    gated = build_model(spec).eval()
    for gate in gated.skip.gates:
        torch.nn.init.zeros_(gate.psi.weight)
        torch.nn.init.constant_(gate.psi.bias, -1e4)
    plain = build_model(spec.replace(skip="none")).eval()
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("skip.")})
    x = torch.randn(1, 3, 24, 40)
    with torch.no_grad():
        torch.testing.assert_close(gated(x), plain(x))
