"""Build a torch module from an ArchSpec: stem, encoder, skip design, bottleneck, decoder, head."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .blocks import make_stage
from .layers import nd
from .operators import make_down, make_stem, make_up
from .skips import SKIPS
from .skips.base import State
from .spec import ArchSpec

# probe(stage, level, main, state, pinned): called after each encoder level (after the
# down operator), after the bottleneck and after each decoder level. `main` is the
# tensor the main path carries on; `pinned` the padded input a restore head keeps.
Probe = Callable[[str, int, torch.Tensor, State, "torch.Tensor | None"], None]


class UNet(nn.Module):
    """The network an ArchSpec describes. Any input size: padded to 2^depth, cropped back."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        ws, d, dims = spec.level_widths, spec.depth, spec.spatial_dims
        self.stem = make_stem(spec.stem, spec.in_channels, ws[0], dims)
        c = spec.stem_channels
        self.encoder = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level in range(1, d + 1):
            self.encoder.append(make_stage(spec, c, ws[level - 1], spec.enc_blocks[level - 1], 2 ** (level - 1)))
            self.downs.append(make_down(spec.down, ws[level - 1], ws[level], dims))
            c = spec.down_channels(level)
        self.middle = make_stage(spec, c, ws[d], spec.mid_blocks, 2**d)
        self.skip = SKIPS.get(spec.skip.type).from_spec(spec)
        self.ups = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in range(1, d + 1):
            up = spec.up_channels(level)
            self.ups.append(make_up(spec.up, ws[level], ws[level - 1], dims))
            c_in = self.skip.merged_channels(level, up)
            self.decoder.append(make_stage(spec, c_in, ws[level - 1], spec.dec_blocks[level - 1], 2 ** (level - 1)))
        k = 3 if spec.head == "restore" else 1
        self.head = nd("Conv", dims)(ws[0], spec.out_channels, k, padding=k // 2)
        self.checkpointing = False  # a training option (Budget.checkpoint), not part of the architecture

    def _checkpointed(self) -> bool:
        return self.checkpointing and self.training and torch.is_grad_enabled()

    def _level(self, stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One level's blocks; with checkpointing (training, grad on) their activations
        are recomputed in backward instead of kept."""
        if not self._checkpointed():
            return stage(x)
        return checkpoint(_Recomputed(stage, stage), x, use_reentrant=False)

    def _encoder_level(self, stage: nn.Module, down: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An encoder level and its down operator: (the level's output, what goes down).
        Checkpointed together, so the level's output is kept only if the skip design
        holds it: the skip tensors are what checkpointing cannot drop, and a design that
        holds less (UNet--, none) then trains in less memory."""
        if not self._checkpointed():
            e = stage(x)
            return e, down(e)
        both = nn.ModuleList([stage, down])
        return checkpoint(_Recomputed(both, lambda t: _then_down(stage, down, t)), x, use_reentrant=False)

    def forward(self, x: torch.Tensor, probe: Probe | None = None) -> torch.Tensor:
        sides = x.shape[2:]
        m = self.spec.multiple
        pads = [-s % m for s in sides]
        if any(pads):  # zeros after each side (right and bottom for images, as NAFNet does)
            x = F.pad(x, [v for p in reversed(pads) for v in (0, p)])
        pinned = x if self.spec.head == "restore" else None
        x = self.stem(x)
        state = self.skip.begin()
        for i, (stage, down) in enumerate(zip(self.encoder, self.downs, strict=True)):
            e, x = self._encoder_level(stage, down, x)
            self.skip.push(state, i + 1, e)
            del e  # held by the skip design or freed
            if probe is not None:
                probe("encoder", i + 1, x, state, pinned)
        x = self._level(self.middle, x)
        if probe is not None:
            probe("bottleneck", self.spec.depth + 1, x, state, pinned)
        for i in reversed(range(self.spec.depth)):
            x = self.ups[i](x)
            x = self.skip.pull(state, i + 1, x)
            x = self._level(self.decoder[i], x)
            if probe is not None:
                probe("decoder", i + 1, x, state, pinned)
        x = self.head(x)
        if pinned is not None:
            x = x + pinned
        return x[(..., *[slice(0, s) for s in sides])] if any(pads) else x


def _then_down(stage: nn.Module, down: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    e = stage(x)
    return e, down(e)


class _Recomputed:
    """A level run under checkpoint: the recomputation in backward must not move batch
    norm's running statistics a second time (momentum 0 there, counters restored)."""

    def __init__(self, owner: nn.Module, run: Callable) -> None:
        self.owner, self.run, self.calls = owner, run, 0  # owner: the modules `run` uses

    def __call__(self, x: torch.Tensor):
        self.calls += 1
        if self.calls == 1:
            return self.run(x)
        found = self.owner.modules()
        norms = [m for m in found if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            return self.run(x)
        finally:
            for m, (momentum, count) in zip(norms, saved, strict=True):
                m.momentum = momentum
                m.num_batches_tracked.copy_(count)


_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Skip weight initialisation of convs and norms (meaningless on the meta device, and
    half the cost of building a network there)."""
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.conv import _ConvNd

    with _INIT_LOCK:
        saved = _ConvNd.reset_parameters, _NormBase.reset_parameters
        _ConvNd.reset_parameters = _NormBase.reset_parameters = lambda self: None
        try:
            yield
        finally:
            _ConvNd.reset_parameters, _NormBase.reset_parameters = saved


def build_model(spec: ArchSpec, device: str | torch.device | None = None) -> UNet:
    """The torch module for a spec (weights freshly initialised; on "meta", shapes only)."""
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"), _no_init():
            return UNet(spec)
    if device is None:
        return UNet(spec)
    with torch.device(device):
        return UNet(spec)
