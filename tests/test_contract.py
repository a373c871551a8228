"""Contract suite: every registered block family x skip design x depth builds a working
network whose analytic skip memory is what the forward pass holds (skipsearch.testing)."""

from __future__ import annotations

import pytest

from skipsearch import list_blocks, list_skips
from skipsearch import testing as contract
from skipsearch.blocks import BLOCKS
from skipsearch.skips import SKIPS

CASES = contract.cases()
VOLUMES = contract.cases(dims=3)  # the same suite for 3-D networks (volumes)


def _id(s) -> str:
    return f"{s.block.type}-{s.skip.type}-d{s.depth}" + ("-3d" if s.spatial_dims == 3 else "")


@pytest.fixture(params=CASES, ids=[_id(s) for s in CASES])
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


# volumes: the shape checks (skip memory on meta, the JSON) at every depth; the checks that
# run real tensors (forward and backward, determinism, model.py) at depths 2 and 3, where
# a volume pads to at most 8^3 (depth 5 pads to 32^3 and takes seconds per network)
SHAPE_CHECKS = (contract.check_skip_memory, contract.check_round_trip)
REAL = [s for s in VOLUMES if s.depth <= 3]


@pytest.mark.parametrize("check", SHAPE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("volume", VOLUMES, ids=_id)
def test_contract_in_3d(volume, check):
    check(volume)


@pytest.mark.parametrize("check", [c for c in contract.CHECKS if c not in SHAPE_CHECKS], ids=lambda c: c.__name__)
@pytest.mark.parametrize("volume", REAL, ids=_id)
def test_contract_in_3d_with_real_tensors(volume, check):
    check(volume)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("skip", list_skips())
def test_restore_head_is_an_exact_residual(skip, dims):
    contract.check_restore_identity(contract.small_spec("naf", skip, 3, spatial_dims=dims))


TRAINED = [s for s in VOLUMES if s.depth == 2 and (s.block.type == "naf" or s.skip.type == "plain")]  # each design, each family


@pytest.mark.parametrize("spec", TRAINED, ids=_id)
def test_training_memory_of_volumes_is_predicted_to_the_byte(spec):
    contract.check_train_memory(spec)


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
