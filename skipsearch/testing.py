"""Contract checks for block families and skip designs, usable in any test suite.

skipsearch's own contract tests run these over every registered family x design x depth;
a user who registers their own design or family calls them from their tests:

    from skipsearch.testing import check_skip_design
    def test_my_design():
        check_skip_design("my_design")      # every family, depths 2-5

Each check raises AssertionError with the case and what differed. Families and designs
declare the small parameters a quick test needs (``test_params``: a CMRF at width 8 needs
n = 2), so the checks stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .blocks import BLOCKS
from .model import build_model
from .skips import SKIPS
from .spec import ArchSpec

DEPTHS = (2, 3, 4, 5)
ODD_SIZE = (37, 53)  # not divisible by any 2^depth: padding and cropping are exercised
ODD_VOLUME = (9, 13, 11)  # the same for volumes (spatial_dims 3), small enough for every depth


def sides(spec: ArchSpec, image: tuple[int, ...] = ODD_SIZE) -> tuple[int, ...]:
    """`image` for a 2-D spec; for a volume spec, an odd volume instead."""
    return image if spec.spatial_dims == 2 else ODD_VOLUME[: spec.spatial_dims]


def small_spec(block: str, skip: str, depth: int, **changes) -> ArchSpec:
    """A small spec of any registered family x design (width 8, each with its test params)."""
    b = {"type": block, **BLOCKS.get(block).test_params}
    s = {"type": skip, **SKIPS.get(skip).test_params}
    return ArchSpec(**{"depth": depth, "width": 8, "block": b, "skip": s, **changes})


def cases(
    blocks: Iterable[str] | None = None, skips: Iterable[str] | None = None, depths=DEPTHS, dims: int = 2
) -> list[ArchSpec]:
    """Specs for every (family, design, depth) asked for (all registered ones by default),
    for images (dims 2) or volumes (dims 3)."""
    blocks = list(blocks) if blocks is not None else BLOCKS.names()
    skips = list(skips) if skips is not None else SKIPS.names()
    volume = {"spatial_dims": dims} if dims != 2 else {}
    return [small_spec(b, s, d, **volume) for b in blocks for s in skips for d in depths]


def check_forward_backward(spec: ArchSpec, size: tuple[int, ...] | None = None) -> None:
    """Any input size gives an output of that size; every parameter gets a finite gradient."""
    size = size or sides(spec)
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.randn(2, spec.in_channels, *size)
    y = model(x)
    assert y.shape == (2, spec.out_channels, *size), f"{spec.summary()}: output {tuple(y.shape)}"
    assert torch.isfinite(y).all(), f"{spec.summary()}: non-finite output"
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{spec.summary()}: no gradient reached {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters()), f"{spec.summary()}: non-finite gradient"


def check_round_trip(spec: ArchSpec) -> None:
    """The spec's JSON rebuilds the same spec, arch id and state_dict layout."""
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec and again.arch_id == spec.arch_id, f"{spec.summary()}: JSON round trip changed the spec"
    a, b = build_model(spec).state_dict(), build_model(again).state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a), f"{spec.summary()}: state_dict differs"


def check_deterministic(spec: ArchSpec) -> None:
    """The same seed builds the same network with the same outputs."""
    x = torch.randn(1, spec.in_channels, *sides(spec, (33, 40)))
    outs = []
    for _ in range(2):
        torch.manual_seed(1234)
        model = build_model(spec).eval()
        with torch.no_grad():
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1]), f"{spec.summary()}: not deterministic under a seed"


def check_skip_memory(spec: ArchSpec, shape: tuple[int, ...] | None = None) -> None:
    """The design's analytic skip memory equals the measured one, at every stage and per
    label, to the byte (the memory a design claims is what the forward pass holds)."""
    from .costs.memory import analytic_timeline, measure

    shape = shape or (2, 3, *sides(spec))
    shape = (shape[0], spec.in_channels, *shape[2:])
    measured = measure(build_model(spec, "meta").eval(), torch.empty(shape, device="meta"))
    analytic = analytic_timeline(spec, shape, itemsize=4)
    assert [s.name for s in measured.timeline] == [s.name for s in analytic], f"{spec.summary()}: stages differ"
    for m, a in zip(measured.timeline, analytic, strict=True):
        assert m.skip_bytes == a.skip_bytes, f"{spec.summary()} at {m.name}: measured {m.skip_bytes}, analytic {a.skip_bytes}"
        held = {k: v for k, v in m.levels.items() if v}
        assert held == a.levels, f"{spec.summary()} at {m.name}: measured {held}, analytic {a.levels}"


def check_restore_identity(spec: ArchSpec) -> None:
    """With a zero head, a restore network returns its input exactly (global residual)."""
    spec = spec.replace(head="restore", out_channels=spec.in_channels)
    model = build_model(spec).eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.randn(1, spec.in_channels, *sides(spec, (21, 30)))
    with torch.no_grad():
        assert torch.equal(model(x), x), f"{spec.summary()}: restore head is not an exact residual"


def check_standalone(spec: ArchSpec) -> None:
    """The model.py of an export bundle builds the same network: the same state_dict keys
    and shapes, and with the same (random) weights identical outputs at an odd size."""
    import types

    from .standalone import bundle_source

    module = types.ModuleType("skipsearch_standalone_check")
    exec(compile(bundle_source(spec), "model.py", "exec"), module.__dict__)
    ours, theirs = build_model(spec).eval(), module.build().eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert [(k, v.shape) for k, v in a.items()] == [(k, v.shape) for k, v in b.items()], f"{spec.summary()}: state_dict differs"
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ours.parameters():  # zero-initialised gates would hide differences
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, spec.in_channels, *sides(spec), generator=g)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x)), f"{spec.summary()}: model.py gives other outputs"


def check_train_memory(spec: ArchSpec, batch: int = 2, size: tuple[int, ...] | None = None) -> None:
    """The training step's peak predicted on the meta device equals the one measured with
    real CPU tensors, byte for byte, and its breakdown adds up (weights = the parameters
    and buffers; AdamW keeps at least two moments per parameter)."""
    from .costs.training import train_memory
    from .train import Budget

    budget = Budget(batch=batch, size=size or sides(spec, (32, 32)))
    predicted, measured = train_memory(spec, budget), train_memory(spec, budget, device="cpu")
    assert predicted.to_dict()["train"]["breakdown"] == measured.to_dict()["train"]["breakdown"], (
        f"{spec.summary()}: training memory predicted {predicted} != measured {measured}"
    )
    assert predicted.peak_bytes == measured.peak_bytes
    model = build_model(spec)
    params = sum(t.numel() * t.element_size() for t in model.parameters())
    weights = params + sum(t.numel() * t.element_size() for t in model.buffers())
    assert predicted.weights == weights and predicted.optimizer >= 2 * params
    parts = predicted.weights + predicted.gradients + predicted.optimizer + predicted.activations
    assert parts == predicted.peak_bytes and predicted.activations > 0


CHECKS = (check_forward_backward, check_round_trip, check_deterministic, check_skip_memory, check_standalone)


def check_skip_design(name: str, blocks: Iterable[str] | None = None, depths=DEPTHS) -> None:
    """Every contract check for skip design `name` with every (or the given) block family."""
    for spec in cases(blocks, [name], depths):
        for check in CHECKS:
            check(spec)
    check_restore_identity(small_spec(BLOCKS.names()[0], name, 3))


def check_block_family(name: str, skips: Iterable[str] | None = None, depths=DEPTHS) -> None:
    """Every contract check for block family `name` with every (or the given) skip design."""
    for spec in cases([name], skips, depths):
        for check in CHECKS:
            check(spec)


__all__ = [
    "CHECKS",
    "cases",
    "check_block_family",
    "check_deterministic",
    "check_forward_backward",
    "check_restore_identity",
    "check_round_trip",
    "check_skip_design",
    "check_skip_memory",
    "check_standalone",
    "check_train_memory",
    "small_spec",
]
