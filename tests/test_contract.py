"""Contract suite: every block family x skip design x depth builds a working network."""

from __future__ import annotations

import pytest
import torch
from helpers import small_spec

from skipsearch import ArchSpec, build_model, list_blocks, list_skips

CASES = [(b, s, d) for b in list_blocks() for s in list_skips() for d in (2, 3, 4, 5)]


@pytest.fixture(params=CASES, ids=[f"{b}-{s}-d{d}" for b, s, d in CASES])
def spec(request) -> ArchSpec:
    return small_spec(*request.param)


def test_registries_are_complete():
    assert list_blocks() == ["cmrf", "conv", "naf"]
    assert list_skips() == ["dense", "msiam_iem", "none", "plain", "sdi"]


def test_forward_backward_odd_size(spec):
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.randn(2, 3, 37, 53)
    y = model(x)
    assert y.shape == (2, spec.out_channels, 37, 53)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_json_round_trip_rebuilds_same_state_dict(spec):
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec and again.arch_id == spec.arch_id
    a, b = build_model(spec).state_dict(), build_model(again).state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


def test_deterministic_under_seed(spec):
    x = torch.randn(1, 3, 33, 40)
    outs = []
    for _ in range(2):
        torch.manual_seed(1234)
        model = build_model(spec).eval()
        with torch.no_grad():
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("skip", list_skips())
def test_restore_head_is_identity_for_zero_output_conv(skip):
    spec = small_spec("naf", skip, 3, head="restore", out_channels=3)
    model = build_model(spec).eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.randn(1, 3, 21, 30)
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_skip_memory_analytic_equals_measured_on_meta(spec):
    from skipsearch.costs.memory import analytic_timeline, measure

    shape = (2, 3, 37, 53)
    measured = measure(build_model(spec, "meta").eval(), torch.empty(shape, device="meta"))
    analytic = analytic_timeline(spec, shape, itemsize=4)
    assert [s.name for s in measured.timeline] == [s.name for s in analytic]
    for m, a in zip(measured.timeline, analytic, strict=True):
        assert m.skip_bytes == a.skip_bytes, m.name
        assert {k: v for k, v in m.levels.items() if v} == a.levels, m.name
