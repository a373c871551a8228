"""What the dashboard shows, as JSON-ready data: the figures (plotly JSON), the tables,
every trial's details for the trial view, the cost pickers. The offline page embeds it;
the live server (serve.py) hands it out at /api/results and the page redraws from it.

Every string a user wrote reaches the page escaped: figure texts and table cells are
HTML-escaped here, and the page sets the trial view's fields as text, never as HTML.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .dashboard import (
    STAGE_NAMES,
    _empty_note,
    _finite,
    _table,
    esc,
    front3d_figure,
    hypervolume_figure,
    parallel_figure,
    pareto_figure,
    pareto_rows,
    skip_summary,
    timeline_figure,
)
from .objectives import OBJECTIVES, format_value
from .results import StudyResults
from .search import attrs as A

COSTS = ("skip_memory_bytes", "peak_activation_bytes", "train_peak_bytes", "latency_ms", "params", "macs", "flops")


def payload(r: StudyResults, importance: bool = True) -> dict[str, Any]:
    """The dashboard's data for one study (JSON-ready: plain lists, dicts, numbers, text)."""
    import plotly.io as pio

    figures = {"pareto": pareto_figure(r)}
    if len(r.objectives) >= 3:
        figures["front3d"] = front3d_figure(r)
    figures.update(hypervolume=hypervolume_figure(r), timeline=timeline_figure(r), parallel=parallel_figure(r))
    if importance:
        from .importance import importance_figure

        figures["importance"] = importance_figure(r)
    x_name = r.objectives[1] if len(r.objectives) > 1 else r.objectives[0]
    return clean(
        {
            "study": r.name,
            "directory": str(r.directory),
            "objectives": [
                {"name": o, "direction": d, "label": _label(o)} for o, d in zip(r.objectives, r.directions, strict=True)
            ],
            "axes": {"x": x_name, "y": r.objectives[0], "x_div": _divisor(x_name), "y_div": _divisor(r.objectives[0])},
            "figures": {name: json.loads(pio.to_json(fig, validate=False)) for name, fig in figures.items()},
            "tables": {"pareto": _table(pareto_rows(r), "pareto-table"), "skip": _table(skip_summary(r), "skip-table")},
            "meta": meta_line(r),
            "note": _empty_note(r),
            "hypervolume": r.hypervolume,
            "hv_history": [[int(n), float(h)] for n, h in zip(r.hv_history["number"], r.hv_history["hypervolume"], strict=True)],
            "front": [int(n) for n in _by_accuracy(r.front, r)["number"]],  # most accurate first
            "trials": trial_details(r),
            "pickers": pickers(r),
        }
    )


def _by_accuracy(front, r: StudyResults):
    return front.sort_values(r.objectives[0], ascending=r.directions[0] == "minimize")


def meta_line(r: StudyResults) -> str:
    counts = r.frame["state"].value_counts().to_dict() if len(r.frame) else {}
    return (
        f"task {esc(r.config.get('task', '?'))} | space {esc(r.config.get('space', '?'))} | objectives "
        + ", ".join(f"{esc(o)} ({d})" for o, d in zip(r.objectives, r.directions, strict=True))
        + f" | trials {len(r.frame)} ({', '.join(f'{esc(k)} {v}' for k, v in counts.items())}) | hypervolume {r.hypervolume:.4g}"
    )


def _label(name: str) -> str:
    return OBJECTIVES.get(name).axis()[0] if name in OBJECTIVES else name


def _divisor(name: str) -> float:
    return OBJECTIVES.get(name).axis()[1] if name in OBJECTIVES else 1.0


def _num(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def trial_details(r: StudyResults) -> list[dict[str, Any]]:
    """One entry per trial: what the trial view shows (values formatted with units, the
    skip timeline in M_E1, the learning curve at the rungs, the seeds, the export command)."""
    attrs = {t.number: t.user_attrs for t in r.trials}
    shown = [o for o in dict.fromkeys([*r.objectives, *COSTS, "skip_memory_me1", "train_time_s"]) if o in r.frame]
    out = []
    for row in r.frame.to_dict("records"):
        n = int(row["number"])
        a = attrs.get(n, {})
        me1, timeline = A.m_e1_bytes(a), A.skip_timeline(a)
        values = {o: _num(row.get(o)) for o in shown}
        seeds = row.get("seeds") if isinstance(row.get("seeds"), list) else []
        out.append(
            {
                "number": n,
                "state": str(row.get("state")),
                "feasible": bool(row.get("feasible")),
                "pareto": bool(row.get("pareto")),
                "summary": str(row.get(A.SUMMARY) or ""),
                "values": values,
                "text": {o: format_value(o, v) if v is not None else "-" for o, v in values.items()},
                "std": {o: _num(row.get(f"{o}_std")) for o in r.objectives if _num(row.get(f"{o}_std")) is not None},
                "seeds": [float(s) for s in seeds],
                "confidence": _num(row.get(A.FRONT_CONFIDENCE)),
                "timeline": [b / me1 for b in timeline] if me1 else [],
                "stages": STAGE_NAMES((len(timeline) - 1) // 2) if timeline else [],
                "curve": [[float(s), float(v)] for s, v in A.curve(a) if _finite(v)],
                "note": next((f"{k}: {row[k]}" for k in (A.INFEASIBLE, A.FAILURE) if isinstance(row.get(k), str)), ""),
                "preset": A.preset(row) or "",
                "spec": A.spec_json(a) or "",
                "export": f"skipsearch export {r.directory} --trial {n}" if A.weights(a) else "",
            }
        )
    return out


def pickers(r: StudyResults) -> list[dict[str, Any]]:
    """A "best under X" slider per cost figure the complete trials have: its range and unit."""
    f = r.frame
    done = f[(f["state"] == "COMPLETE") & f["feasible"].astype(bool)]
    out = []
    for name in COSTS:
        if name not in done or name == r.objectives[0]:
            continue
        values = [float(v) for v in done[name] if _finite(v)]
        if len(values) < 2 or min(values) == max(values):
            continue
        out.append({"name": name, "label": _label(name), "div": _divisor(name), "min": min(values), "max": max(values)})
    return out


def clean(value: Any) -> Any:
    """The same data with every non-finite number as None: JSON has no NaN, and the page
    parses its data with JSON.parse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value
