"""Contract suite: every registered block family x skip design x depth builds a working
network whose analytic skip memory is what the forward pass holds (skipsearch.testing)."""

from __future__ import annotations

import pytest

from skipsearch import list_blocks, list_skips
from skipsearch import testing as contract
from skipsearch.blocks import BLOCKS
from skipsearch.skips import SKIPS

CASES = contract.cases()


@pytest.fixture(params=CASES, ids=[f"{s.block.type}-{s.skip.type}-d{s.depth}" for s in CASES])
def spec(request):
    return request.param


def test_registries_are_the_single_source():
    assert list_blocks() == BLOCKS.names() and list_skips() == SKIPS.names()
    for name, entry in [*BLOCKS.items(), *SKIPS.items()]:
        assert entry.name == name  # register() set it; no second name to drift
    assert len(CASES) == len(list_blocks()) * len(list_skips()) * len(contract.DEPTHS)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(spec, check):
    check(spec)


@pytest.mark.parametrize("skip", list_skips())
def test_restore_head_is_an_exact_residual(skip):
    contract.check_restore_identity(contract.small_spec("naf", skip, 3))


def test_a_broken_design_fails_the_memory_check(monkeypatch):
    """The checks can fail: a design whose analytic figure is off by one level is caught."""
    plain = SKIPS.get("plain")
    real = plain.analytic.__func__

    def off_by_one(cls, spec, sizes):
        timeline = real(cls, spec, sizes)
        return [{**t, "L1": t.get("L1", 0) + 1} for t in timeline]

    monkeypatch.setattr(plain, "analytic", classmethod(off_by_one))
    with pytest.raises(AssertionError, match="measured"):
        contract.check_skip_memory(contract.small_spec("conv", "plain", 2))
