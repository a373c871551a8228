"""`skipsearch dashboard A B ...`: the fronts of several studies on one page, with their
hypervolume histories computed on one shared reference point (each objective's worst value
over all the studies, pushed out by 10 % of its range), so the curves can be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .dashboard import _axis, _scale, esc, script_json, write_page
from .errors import UserError
from .objectives import format_value
from .pareto import default_reference, hypervolume_history, non_dominated
from .results import StudyResults

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _done(r: StudyResults):
    f = r.frame
    return f[(f["state"] == "COMPLETE") & f["feasible"].astype(bool)]


def check_same_objectives(results: list[StudyResults]) -> None:
    """Studies compared on one page must have the same objectives, in the same directions."""
    first = results[0]
    want = list(zip(first.objectives, first.directions, strict=True))
    for other in results[1:]:
        got = list(zip(other.objectives, other.directions, strict=True))
        if got != want:
            show = lambda pairs: ", ".join(f"{o} ({d})" for o, d in pairs)  # noqa: E731
            raise UserError(
                f"{other.directory}: objectives {show(got)} differ from {first.directory}'s {show(want)};"
                " allowed: studies with the same objectives and directions"
            )


def shared_reference(results: list[StudyResults]) -> np.ndarray | None:
    values = [_done(r)[r.objectives].to_numpy(dtype=float) for r in results]
    values = [v for v in values if len(v)]
    return default_reference(np.vstack(values), results[0].directions) if values else None


def compare_figures(results: list[StudyResults]) -> dict[str, Any]:
    import plotly.graph_objects as go

    first = results[0]
    y_name, x_name = first.objectives[0], first.objectives[1] if len(first.objectives) > 1 else first.objectives[0]
    ref = shared_reference(results)
    fronts, history = go.Figure(), go.Figure()
    for i, r in enumerate(results):
        color, label = COLORS[i % len(COLORS)], esc(f"{r.name} ({r.directory})")
        done = _done(r)
        if not len(done):
            continue
        values = done[r.objectives].to_numpy(dtype=float)
        front = done[non_dominated(values, r.directions)].sort_values(x_name)
        fronts.add_trace(
            go.Scatter(
                x=_scale(x_name, done[x_name]), y=_scale(y_name, done[y_name]), mode="markers", name=f"{label}: all",
                marker={"color": color, "size": 6, "opacity": 0.35}, legendgroup=str(i),
                text=[esc(s) for s in done.get("summary", [""] * len(done))], hoverinfo="text",
            )
        )  # fmt: skip
        fronts.add_trace(
            go.Scatter(
                x=_scale(x_name, front[x_name]), y=_scale(y_name, front[y_name]), mode="lines+markers",
                line={"shape": "hv", "color": color}, marker={"size": 10, "color": color}, name=f"{label}: front",
                legendgroup=str(i), text=[f"#{n} {esc(s)}" for n, s in zip(front["number"], front["summary"], strict=True)],
                hoverinfo="text",
            )
        )  # fmt: skip
        hv = hypervolume_history(values, r.directions, ref)
        history.add_trace(
            go.Scatter(
                x=list(range(1, len(hv) + 1)), y=hv.tolist(), mode="lines", line={"shape": "hv", "color": color}, name=label
            )
        )
    where = ", ".join(format_value(n, v) for n, v in zip(first.objectives, ref if ref is not None else [], strict=False))
    fronts.update_layout(title="Pareto fronts", xaxis=_axis(x_name), yaxis=_axis(y_name), height=560)
    history.update_layout(
        title=f"Hypervolume by complete trial, shared reference point ({esc(where)})",
        xaxis={"title": {"text": "complete, feasible trials"}},
        yaxis={"title": {"text": "hypervolume"}},
        height=380,
    )
    return {"fronts": fronts, "history": history, "reference": ref}


def compare_page(results: list[StudyResults]) -> str:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    from .page import STYLE

    check_same_objectives(results)
    figs = compare_figures(results)
    ref = figs["reference"]
    rows = []
    for r in results:
        done = _done(r)
        values = done[r.objectives].to_numpy(dtype=float)
        hv = hypervolume_history(values, r.directions, ref)[-1] if len(done) and ref is not None else 0.0
        rows.append(
            f"<tr><td>{esc(r.name)}</td><td>{esc(r.directory)}</td><td>{len(r.frame)}</td><td>{len(done)}</td>"
            f"<td>{int(non_dominated(values, r.directions).sum()) if len(done) else 0}</td><td>{hv:.4g}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>study</th><th>folder</th><th>trials</th><th>complete</th><th>on its front</th>"
        f"<th>hypervolume (shared reference)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    divs = [
        pio.to_html(figs[k], full_html=False, include_plotlyjs=False, div_id=f"fig-{k}", validate=False)
        for k in ("fronts", "history")
    ]
    names = ", ".join(esc(r.name) for r in results)
    summary = {"studies": [str(r.directory) for r in results], "reference": None if ref is None else [float(v) for v in ref]}
    return "\n".join(
        [
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>compare {names} - skipsearch</title>",
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>",
            f"<h1>Compare studies: {names}</h1>",
            table,
            *divs,
            f"<script type='application/json' id='data'>{script_json(summary)}</script>",
            "</body></html>",
        ]
    )


def write_compare(directories: list[str], out: str | None, names: str | None = None) -> Path:
    from .results import load_results

    results = [load_results(d, names) for d in directories]
    path = Path(out) if out else Path(directories[0]) / "compare.html"
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a folder; allowed: a file path for the page", field="out")
    if not path.parent.is_dir():
        raise UserError(f"folder {str(path.parent)!r} does not exist; allowed: a file in an existing folder", field="out")
    return write_page(path, compare_page(results))
