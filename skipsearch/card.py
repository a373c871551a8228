"""MODEL_CARD.md for an export bundle."""

from __future__ import annotations

from typing import Any

from .export import TOLERANCE
from .objectives import OBJECTIVES
from .search import attrs as A
from .spec import ArchSpec


def _mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.3f} MiB"


def _seeds_text(a: dict[str, Any], metric: str) -> str:
    """How sure the accuracy figure is: how many seeds it averages, their spread, and the
    share of bootstrap resamples in which the trial stays on the front."""
    seeds = a.get("seeds")
    if isinstance(seeds, list) and len(seeds) > 1:
        conf = a.get(A.FRONT_CONFIDENCE)
        where = f"; on the front in {conf:.0%} of bootstrap resamples of the seeds" if isinstance(conf, float) else ""
        return f"- {metric} is the mean of {len(seeds)} training seeds: {', '.join(f'{v:.4f}' for v in seeds)}{where}"
    return f"- {metric} is from one training run (one seed): short runs vary between seeds; repeat the front to know by how much"


def _figures(results, trial) -> dict[str, Any]:
    """The trial's attributes with its row of the results table over them: objective values
    as means over its seeds, and the seeds, spread and front confidence where repeated."""
    import math

    rows = results.frame[results.frame["number"] == trial.number].to_dict("records")
    row = {k: v for k, v in (rows[0] if rows else {}).items() if not (isinstance(v, float) and math.isnan(v))}
    return {**trial.user_attrs, **{k: v for k, v in row.items() if v is not None}}


def model_card(results, trial, spec: ArchSpec, checks: dict[str, float], size: tuple[int, int], limit: float) -> str:
    a: dict[str, Any] = _figures(results, trial)
    cfg = results.config
    me1, timeline = A.m_e1_bytes(a), A.skip_timeline(a)
    depth = spec.depth
    stages = [f"after encoder level {i}" for i in range(1, depth + 1)] + ["after the bottleneck"]
    stages += [f"after decoder level {i}" for i in range(depth, 0, -1)]
    front = results.front
    on_front = int(trial.number) in set(int(n) for n in front["number"])
    metrics = [n for n, o in OBJECTIVES.items() if o.metric and n in a]
    from .search.fields import REFERENCE_SIDE

    ref = cfg.get("reference_input", [spec.in_channels, *[REFERENCE_SIDE[spec.spatial_dims]] * spec.spatial_dims])
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(results.objectives, results.directions, strict=True))
    lines = [
        f"# Model card: {spec.arch_id}",
        "",
        f"{spec.summary()}",
        "",
        "## Task and data",
        f"- task: `{cfg.get('task')}` with options `{cfg.get('task_options', {})}`",
        f"- training budget: `{cfg.get('budget', {})}`",
        "",
        "## Validation metrics",
        *[f"- {m}: {a[m]:.4f}" + (f" ± {a[m + '_std']:.4f} (std)" if a.get(m + "_std") is not None else "") for m in metrics],
        _seeds_text(a, results.objectives[0]),
        f"- train time: {a.get('train_time_s', float('nan')):.1f} s on {a.get('device', '?')}",
        "",
        "## Costs",
        f"- parameters: {a.get('params'):,}",
        f"- MACs (thop, {_x(ref)}): {a.get('macs', 0) / 1e9:.3f} G; FLOPs (FlopCounterMode): {a.get('flops', 0) / 1e9:.3f} G",
        f"- skip memory (inference, batch 1, fp32, {_x(ref[1:])}): {_mib(a.get('skip_memory_bytes'))}"
        + (f" = {a.get('skip_memory_bytes') / me1:.4g} M_E1 (M_E1 = {_mib(me1)})" if me1 else ""),
        f"- peak inference activations: {_mib(a.get('peak_activation_bytes'))}",
        *_training_memory(a, cfg),
        "",
        "Skip memory held at its peak, by level:",
        "",
        "| part | bytes | M_E1 |",
        "|---|---:|---:|",
        *[f"| {k} | {v:,} | {v / me1:.4g} |" for k, v in A.skip_levels(a).items() if me1],
        "",
        "Skip-memory timeline:",
        "",
        "| stage | skip memory | M_E1 |",
        "|---|---:|---:|",
        *[f"| {s} | {_mib(b)} | {b / me1:.4g} |" for s, b in zip(stages, timeline, strict=False) if me1],
        "",
        "## How the search found it",
        f"- study `{results.name}`, trial #{trial.number}"
        + (f" (seed preset `{A.preset(a)}`)" if A.preset(a) else "")
        + (f", same architecture as trial #{A.duplicate_of(a)}" if A.duplicate_of(a) is not None else ""),
        f"- search space `{cfg.get('space')}`; objectives {objectives}",
        f"- constraints: {cfg.get('constraints') or 'none'}",
        f"- on the Pareto front of {len(front)} feasible trials: {'yes' if on_front else 'no'}; values "
        + ", ".join(f"{n} = {v:.4g}" for n, v in zip(results.objectives, trial.values, strict=True)),
        "",
        "## Export checks",
        f"Random input 1x{spec.in_channels}x{_x(size)}, max abs difference against the torch model "
        f"(allowed: {limit:.3g}, {TOLERANCE:g} of the largest output magnitude, at least {TOLERANCE:g}):",
        "",
        *[f"- {k}: {v:.3g}" for k, v in checks.items()],
        "",
        f"model.ts and model.onnx are traced at {_x(size)} (their padding is fixed for that size); model.py",
        "and skipsearch.load() take any size (padded to a multiple of 2^depth and cropped back).",
        "",
    ]
    return "\n".join(lines)


def _training_memory(a: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """The training step's peak and the latency, where the study worked them out (as an
    objective or a constraint)."""
    lines = []
    if a.get("train_peak_bytes") is not None:
        b = cfg.get("budget", {})
        size = "x".join(str(s) for s in b.get("size", []))
        lines.append(
            f"- training step peak (forward, backward, {b.get('optimizer', 'adamw')} step; batch {b.get('batch')}, {size}, "
            f"fp32; predicted on the meta device, equal to the CPU measurement): {_mib(a['train_peak_bytes'])}"
        )
    if a.get("latency_ms") is not None:
        lines.append(
            f"- forward latency (batch 1, reference input, {a.get('latency_device', '?')}, {a.get('latency_threads', '?')} "
            f"threads): median {a['latency_ms']:.2f} ms, interquartile range {a.get('latency_ms_iqr', float('nan')):.2f} ms "
            f"over {a.get('latency_runs', '?')} runs"
        )
    return lines


def _x(sides) -> str:
    """Sides as people write them: 3x256x256, 128x128x128."""
    return "x".join(str(int(v)) for v in sides)
