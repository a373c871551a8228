"""Costs of an architecture: parameters, MACs, FLOPs and (in memory.py) skip memory."""

from __future__ import annotations

from .counts import count_flops, count_macs, count_params

__all__ = ["count_flops", "count_macs", "count_params"]
