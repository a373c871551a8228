"""UNet-- (Yin et al., ACCV 2024): MSIAM aggregates all skips into ONE small map, IEM expands it.

No official code exists; this is the reading recorded in the project docs. MSIAM reduces
each E_l at once with a 1x1 conv (RC) to r_l channels and resizes it losslessly to the
target level with pixel (un)shuffle (RS); E_l itself is not kept. When the deepest level
arrives the reduced maps are concatenated and fused by a 1x1 conv into E', the single
stored map. IEM at decoder level l resizes E' to level l (pixel shuffle), projects it to
the level width with a 1x1 conv and merges it the family's own way.

E' holds K = round(memory * width) channels at full resolution (K * 4^(t-1) at target
level t), so its size does not depend on the target; the paper's operating point,
memory = 1/8, gives its 93.3 % saving. K is shared equally between levels as far as
pixel shuffle allows: level l keeps u_l full-resolution channels, i.e.
r_l = u_l * 4^(l-1) channels at its own resolution, with u_l a multiple of
4^-(min(l, t) - 1). With width 32 and depth 4 every level keeps exactly 1/32 M_E1.
Where the width is too small for every level to keep one granule, K grows to fit.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..layers import nd, pixel_shuffle, pixel_unshuffle
from .base import SKIPS, Sizes, SkipDesign, State, Timeline, area, merge, resolve_merge, stages

TARGETS = ("min", "mid", "max")


def resize(src: int, dst: int, dims: int = 2) -> nn.Module:
    """Lossless move from level src to level dst (1-based; larger = coarser)."""
    if dst > src:
        return pixel_unshuffle(dims, 2 ** (dst - src))
    if dst < src:
        return pixel_shuffle(dims, 2 ** (src - dst))
    return nn.Identity()


def allocate(memory: float, width: int, depth: int, target: int, dims: int = 2) -> list[Fraction]:
    """u_l (full-resolution channels kept by level l) for levels 1..depth; they sum to K.
    A level is 2^dims times smaller than the one above (4 for images, 8 for volumes)."""
    cell = 2**dims
    grain = [Fraction(1, cell ** (min(level, target) - 1)) for level in range(1, depth + 1)]
    total = max(round(memory * width), math.ceil(sum(grain)))
    u = list(grain)
    free = list(range(depth))
    while free:  # water-filling: levels whose minimum exceeds the equal share keep the minimum
        share = Fraction(total - sum(u[i] for i in range(depth) if i not in free)) / len(free)
        stuck = [i for i in free if grain[i] > share]
        if not stuck:
            for i in free:
                u[i] = (share // grain[i]) * grain[i]
            break
        free = [i for i in free if i not in stuck]
    share = Fraction(total, depth)
    while (left := total - sum(u)) > 0:  # hand out the rest, neediest level first
        fits = [i for i in range(depth) if grain[i] <= left]
        i = min(fits, key=lambda i: (u[i] / share, -i))
        u[i] += grain[i]
    return u


@SKIPS.register("msiam_iem")
class MsiamIem(SkipDesign):
    color = "#d62728"  # on the dashboard
    defaults = {"target": "min", "level": 0, "memory": 0.125, "merge": "auto"}

    @classmethod
    def resolve(cls, params: dict[str, Any], spec) -> dict[str, Any]:
        target, level, depth = params["target"], params["level"], spec.depth
        if target not in TARGETS:
            raise SpecError("skip.target", target, ", ".join(TARGETS))
        fixed = {"min": depth, "max": 1}.get(target)
        if fixed is not None:
            if level not in (0, fixed):
                raise SpecError("skip.level", level, f"{fixed} (target '{target}' fixes the level) or omit it")
            level = fixed
        else:
            if depth < 3:
                raise SpecError("skip.target", target, "min, max", f"depth {depth} has no intermediate level")
            level = level or depth // 2 + 1
            if not 1 < level < depth:
                raise SpecError("skip.level", level, f"an intermediate encoder level 2-{depth - 1}")
        if not 0 < params["memory"] <= 2:
            raise SpecError("skip.memory", params["memory"], "0 < memory <= 2 (size of the stored map in M_E1)")
        return resolve_merge({**params, "level": level}, spec)

    @classmethod
    def arguments(cls, spec, stage, up) -> dict[str, Any]:
        p, ws, cell = spec.skip, list(spec.level_widths[:-1]), 2**spec.spatial_dims
        u = allocate(p["memory"], ws[0], spec.depth, p["level"], spec.spatial_dims)
        reduced = [int(ui * cell**i) for i, ui in enumerate(u)]
        return {"widths": ws, "level": p["level"], "reduced": reduced, "full": int(sum(u)), "merge": p["merge"]}

    def __init__(self, widths: list[int], level: int, reduced: list[int], full: int, merge: str, dims: int = 2) -> None:
        """E' lives at encoder `level`; level l keeps reduced[l-1] channels at its own
        resolution; E' has `full` channels at full resolution (K)."""
        super().__init__()
        ws, d, t, cell, conv = widths, len(widths), level, 2**dims, nd("Conv", dims)
        self.depth, self.widths, self.merge = d, ws, merge
        fused = full * cell ** (t - 1)
        self.reduce = nn.ModuleList(nn.Sequential(conv(ws[i], reduced[i], 1), resize(i + 1, t, dims)) for i in range(d))
        self.fuse = conv(fused, fused, 1)
        self.expand = nn.ModuleList(nn.Sequential(resize(t, i + 1, dims), conv(full * cell**i, ws[i], 1)) for i in range(d))

    def push(self, state: State, level: int, feat: torch.Tensor) -> None:
        parts = state.setdefault("parts", [])
        parts.append(self.reduce[level - 1](feat))
        if level == self.depth:
            state["agg"] = self.fuse(torch.cat(state.pop("parts"), dim=1))

    def pull(self, state: State, level: int, up: torch.Tensor) -> torch.Tensor:
        agg = state.pop("agg") if level == 1 else state["agg"]
        return merge(self.merge, up, self.expand[level - 1](agg))

    def merged_channels(self, level: int, up_channels: int) -> int:
        return up_channels if self.merge == "add" else up_channels + self.widths[level - 1]

    @classmethod
    def analytic(cls, spec, sizes: Sizes) -> Timeline:
        p, d, cell = spec.skip, spec.depth, 2**spec.spatial_dims
        u = allocate(p["memory"], spec.level_widths[0], d, p["level"], spec.spatial_dims)
        parts = {f"L{i}": int(u[i - 1] * cell ** (i - 1)) * area(sizes, i) for i in range(1, d + 1)}
        agg = {"agg": int(sum(u)) * area(sizes, 1)}
        out = []
        for kind, level in stages(d):
            if kind == "encoder" and level < d:
                out.append({k: v for k, v in parts.items() if int(k[1:]) <= level})
            else:
                out.append({} if kind == "decoder" and level == 1 else dict(agg))
        return out

    def held(self, state: State) -> dict[str, list[torch.Tensor]]:
        out = {f"L{i + 1}": [t] for i, t in enumerate(state.get("parts", []))}
        if "agg" in state:
            out["agg"] = [state["agg"]]
        return out
