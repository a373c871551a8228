"""The study dashboard: one self-contained HTML page (plotly embedded, works offline).

Data comes from results.load_results(); this module only renders it. Every string that
comes from a user (study name, parameters, notes, failure reasons) is HTML-escaped before
it reaches the page or a plotly hover text (plotly renders hover text as HTML).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from pathlib import Path
from typing import Any

from .errors import UserError
from .objectives import OBJECTIVES, format_value
from .results import StudyResults
from .search import attrs as A

STAGE_NAMES = lambda depth: [f"enc {i}" for i in range(1, depth + 1)] + ["bottleneck"] + [f"dec {i}" for i in range(depth, 0, -1)]  # noqa: E731
MARKERS = ("circle", "diamond", "square", "triangle-up", "cross", "pentagon", "hexagon", "star-triangle-up")


def _stable(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)


def skip_color(name: Any) -> str:
    """A skip design's colour: its own (``color`` in its file) or one derived from its name,
    so a new design gets a colour of its own without touching this module."""
    from .skips import SKIPS

    if name in SKIPS and SKIPS.get(name).color:
        return SKIPS.get(name).color
    return f"hsl({_stable(str(name)) % 360}, 65%, 45%)"


def block_symbol(name: Any) -> str:
    from .blocks import BLOCKS

    if name in BLOCKS and BLOCKS.get(name).symbol:
        return BLOCKS.get(name).symbol
    return MARKERS[_stable(str(name)) % len(MARKERS)]


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def script_json(data: Any) -> str:
    """JSON for a <script> element: parses as JSON, and no '</script>' can end the element
    early (HTML escaping would make it unparseable)."""
    text = json.dumps(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_fmt = format_value


def _error_bars(part, name: str) -> dict[str, Any] | None:
    """One standard deviation over seeds, for trials repeated with several seeds."""
    col = f"{name}_std"
    if col not in part or part[col].isna().all():
        return None
    return {"type": "data", "array": _scale(name, part[col].fillna(0.0)), "visible": True, "thickness": 1}


def _seeds_line(row, objectives: list[str]) -> str | None:
    seeds = row.get("seeds")
    if not isinstance(seeds, list) or len(seeds) < 2:
        return None
    std = row.get(f"{objectives[0]}_std")
    conf = row.get(A.FRONT_CONFIDENCE)
    text = f"{len(seeds)} seeds: {', '.join(_fmt(objectives[0], v) for v in seeds)} (std {_fmt(objectives[0], std)})"
    return text + (f"; on the front in {float(conf):.0%} of bootstrap resamples" if _finite(conf) else "")


def _finite(value: Any) -> bool:
    """A number that is there: pandas fills a column's missing cells with NaN (a trial
    pruned as infeasible has no rung when others stopped at one)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _hover(row, objectives: list[str]) -> str:
    lines = [f"<b>#{row['number']}</b> {esc(row.get('summary', ''))}"]
    seeds = _seeds_line(row, objectives)
    if seeds:
        lines.append(esc(seeds))
    if _finite(row.get("rung")) and row.get("state") == "PRUNED":
        lines.append(f"stopped at rung {int(row['rung'])} ({esc(row.get('steps', '?'))} steps)")
    if isinstance(row.get(A.PRESET), str):
        lines.append(f"preset: {esc(row['preset'])}")
    for name in [*objectives, "skip_memory_me1", "params", "macs", "train_time_s"]:
        if name in row and name not in objectives[:0]:
            lines.append(f"{esc(name)}: {esc(_fmt(name, row.get(name)))}")
    for key in (A.INFEASIBLE, A.FAILURE, A.DUPLICATE_OF):
        if isinstance(row.get(key), str | int) and not (isinstance(row.get(key), float)):
            lines.append(f"{key}: {esc(row[key])}")
    return "<br>".join(lines)


def _axis(name: str) -> dict[str, Any]:
    title = OBJECTIVES.get(name).axis()[0] if name in OBJECTIVES else name
    return {"title": {"text": esc(title)}}


def _scale(name: str, values):
    divisor = OBJECTIVES.get(name).axis()[1] if name in OBJECTIVES else 1.0
    return [float(v) / divisor for v in values]


def pareto_figure(r: StudyResults):
    import plotly.graph_objects as go

    f = r.frame
    y_name, x_name = r.objectives[0], r.objectives[1] if len(r.objectives) > 1 else r.objectives[0]
    fig = go.Figure()
    done = f[(f["state"] == "COMPLETE") & f["feasible"].astype(bool)]
    for skip, group in done.groupby(done.get("skip.type", "skip")):
        for on_front, part in group.groupby("pareto"):
            fig.add_trace(
                go.Scatter(
                    x=_scale(x_name, part[x_name]),
                    y=_scale(y_name, part[y_name]),
                    mode="markers",
                    name=f"{skip}{' (Pareto)' if on_front else ''}",
                    legendgroup=str(skip),
                    marker={
                        "color": skip_color(skip),
                        "symbol": [block_symbol(b) for b in part.get("block.type", [])],
                        "size": 12 if on_front else 8,
                        "opacity": 1.0 if on_front else 0.4,
                        "line": {"width": 1.5 if on_front else 0, "color": "black"},
                    },
                    text=[_hover(row, r.objectives) for _, row in part.iterrows()],
                    hoverinfo="text",
                    customdata=[int(n) for n in part["number"]],  # a click opens this trial
                    error_y=_error_bars(part, y_name),
                )
            )
    front = done[done["pareto"]].sort_values(x_name)
    if len(front):
        fig.add_trace(
            go.Scatter(
                x=_scale(x_name, front[x_name]),
                y=_scale(y_name, front[y_name]),
                mode="lines",
                line={"shape": "hv", "color": "black", "width": 1},
                name="front",
                hoverinfo="skip",
            )
        )
    confirmed = done[done["n_seeds"].fillna(1) >= 2] if "n_seeds" in done else done.iloc[0:0]
    if len(confirmed):  # a ring around each point whose values are means over several seeds
        fig.add_trace(
            go.Scatter(
                x=_scale(x_name, confirmed[x_name]),
                y=_scale(y_name, confirmed[y_name]),
                mode="markers",
                marker={"symbol": "circle-open", "size": 20, "color": "black", "line": {"width": 2}},
                name="confirmed: mean of several seeds (others: one seed)",
                text=[_hover(row, r.objectives) for _, row in confirmed.iterrows()],
                hoverinfo="text",
                customdata=[int(n) for n in confirmed["number"]],
            )
        )
    presets = done[done.get(A.PRESET, None).notna()] if A.PRESET in done else done.iloc[0:0]
    if len(presets):
        fig.add_trace(
            go.Scatter(
                x=_scale(x_name, presets[x_name]),
                y=_scale(y_name, presets[y_name]),
                mode="markers+text",
                marker={"symbol": "star", "size": 16, "color": "gold", "line": {"width": 1, "color": "black"}},
                text=[esc(p) for p in presets[A.PRESET]],
                textposition="top center",
                name="seed presets",
                hovertext=[_hover(row, r.objectives) for _, row in presets.iterrows()],
                hoverinfo="text",
                customdata=[int(n) for n in presets["number"]],
            )
        )
    stopped = f[(f["state"] == "PRUNED") & f[A.INFEASIBLE].isna()]
    if len(stopped) and {x_name, y_name} <= set(stopped) and stopped[y_name].notna().any():
        stopped = stopped[stopped[y_name].notna()]
        fig.add_trace(
            go.Scatter(
                x=_scale(x_name, stopped[x_name]),
                y=_scale(y_name, stopped[y_name]),
                mode="markers",
                name="stopped at a rung (value there)",
                marker={"symbol": "circle-open", "color": "#999", "size": 7},
                text=[_hover(row, r.objectives) for _, row in stopped.iterrows()],
                hoverinfo="text",
                customdata=[int(n) for n in stopped["number"]],
            )
        )
    bad = f[f[A.INFEASIBLE].notna()] if A.INFEASIBLE in f else f.iloc[0:0]
    if len(bad) and x_name in bad:
        floor = min(_scale(y_name, done[y_name])) if len(done) else 0.0
        fig.add_trace(
            go.Scatter(
                x=_scale(x_name, bad[x_name]),
                y=[floor] * len(bad),
                mode="markers",
                name="infeasible (not trained)",
                marker={"symbol": "x", "color": "#bbb", "size": 7},
                text=[_hover(row, r.objectives) for _, row in bad.iterrows()],
                hoverinfo="text",
                customdata=[int(n) for n in bad["number"]],
            )
        )
    fig.update_layout(
        title="Pareto front: " + esc(y_name) + " against " + esc(x_name),
        xaxis=_axis(x_name),
        yaxis=_axis(y_name),
        height=560,
        legend={"title": {"text": "skip design (symbol: block family)"}},
    )
    return fig


def front3d_figure(r: StudyResults):
    import plotly.graph_objects as go

    done = r.frame[(r.frame["state"] == "COMPLETE") & r.frame["feasible"].astype(bool)]
    a, b, c = r.objectives[:3]
    fig = go.Figure(
        go.Scatter3d(
            x=_scale(a, done[a]),
            y=_scale(b, done[b]),
            z=_scale(c, done[c]),
            mode="markers",
            marker={
                "size": [7 if p else 3 for p in done["pareto"]],
                "color": [skip_color(s) for s in done.get("skip.type", [])],
            },
            text=[_hover(row, r.objectives) for _, row in done.iterrows()],
            hoverinfo="text",
        )
    )
    fig.update_layout(title="Three objectives", scene={"xaxis": _axis(a), "yaxis": _axis(b), "zaxis": _axis(c)}, height=560)
    return fig


def hypervolume_figure(r: StudyResults):
    import plotly.graph_objects as go

    ref = ", ".join(_fmt(n, v) for n, v in zip(r.objectives, r.reference if r.reference is not None else [], strict=False))
    fig = go.Figure(
        go.Scatter(x=r.hv_history["number"], y=r.hv_history["hypervolume"], mode="lines+markers", line={"shape": "hv"})
    )
    fig.update_layout(
        title=f"Hypervolume by trial (reference point: {esc(ref)})",
        xaxis={"title": {"text": "trial"}},
        yaxis={"title": {"text": "hypervolume"}},
        height=360,
    )
    return fig


def parallel_figure(r: StudyResults):
    import pandas as pd
    import plotly.graph_objects as go

    done = r.frame[r.frame["state"] == "COMPLETE"]
    dims = []
    for col in [
        "depth",
        "width",
        "enc_blocks",
        "mid_blocks",
        "dec_blocks",
        "block.type",
        "block.n",
        "skip.type",
        "skip.target",
        "skip.channels",
    ]:
        if col not in done or done[col].isna().all():
            continue
        values = done[col]
        if not pd.api.types.is_numeric_dtype(values):
            values = values.astype(object).where(values.notna(), "-").astype(str)  # conditional: absent = "-"
            cats = sorted(values.unique())
            ticks = {"tickvals": list(range(len(cats))), "ticktext": [esc(c) for c in cats]}
            dims.append({"label": esc(col), "values": [cats.index(v) for v in values], **ticks})
        else:
            dims.append({"label": esc(col), "values": values.fillna(-1).tolist()})
    for name in r.objectives:
        dims.append({"label": esc(name), "values": _scale(name, done[name])})
    color = done[r.objectives[0]] if len(done) else []
    fig = go.Figure(go.Parcoords(line={"color": color, "colorscale": "Viridis", "showscale": True}, dimensions=dims))
    fig.update_layout(title="Parameters of complete trials (colour: " + esc(r.objectives[0]) + ")", height=420)
    return fig


def timeline_figure(r: StudyResults):
    import plotly.graph_objects as go

    fig = go.Figure()
    by_number = {t.number: t for t in r.trials}
    for _, row in r.front.iterrows():
        trial = by_number[row["number"]]
        timeline, me1 = A.skip_timeline(trial), A.m_e1_bytes(trial)
        if not timeline or not me1:
            continue
        depth = (len(timeline) - 1) // 2
        fig.add_trace(
            go.Scatter(
                x=STAGE_NAMES(depth),
                y=[b / me1 for b in timeline],
                mode="lines+markers",
                name=f"#{row['number']} {esc(row.get('skip.type', ''))}",
                line={"color": skip_color(row.get("skip.type"))},
                hovertext=[f"{b / 2**20:.3g} MiB" for b in timeline],
            )
        )
    fig.update_layout(
        title="Skip memory through inference, Pareto trials (units of M_E1, as in UNet-- Fig. 1b)",
        yaxis={"title": {"text": "skip memory (M_E1)"}},
        height=420,
    )
    return fig


def skip_summary(r: StudyResults) -> list[dict[str, Any]]:
    f = r.frame
    if "skip.type" not in f:
        return []
    rows = []
    metric, direction = r.objectives[0], r.directions[0]
    for skip, g in f.groupby("skip.type"):
        done = g[g["state"] == "COMPLETE"]
        best = (done[metric].max() if direction == "maximize" else done[metric].min()) if len(done) else None
        rows.append(
            {
                "skip design": skip,
                "trials": len(g),
                "complete": len(done),
                "on the front": int(g["pareto"].sum()),
                "infeasible": int(g[A.INFEASIBLE].notna().sum()) if A.INFEASIBLE in g else 0,
                "failed": int((g["state"] == "FAIL").sum()),
                f"best {metric}": best,
                "best's 95% CI over seeds": _interval(done, metric, direction),
                "min skip memory": g["skip_memory_bytes"].min() if "skip_memory_bytes" in g else None,
            }
        )
    return rows


def _interval(done, metric: str, direction: str) -> str:
    """The design's best trial, mean +- Student-t 95 % half-width over its seeds, where it
    was repeated; "-" for one seed (no spread to speak of)."""
    from scipy.stats import t as student

    if not len(done) or "n_seeds" not in done or f"{metric}_std" not in done:
        return "-"
    best = done.sort_values(metric, ascending=direction == "minimize").iloc[0]
    n, std = best.get("n_seeds"), best.get(f"{metric}_std")
    if not _finite(n) or n < 2 or not _finite(std):
        return "-"
    half = float(student.ppf(0.975, int(n) - 1)) * float(std) / math.sqrt(int(n))
    return f"{best[metric]:.4g} +- {half:.2g} ({int(n)} seeds)"


def _cell_kind(column: str) -> str:
    """Which figure a table column holds, for formatting ("min skip memory" is bytes)."""
    return "skip_memory_bytes" if "memory" in column and "me1" not in column else column


def _table(rows: list[dict[str, Any]], table_id: str) -> str:
    if not rows:
        return "<p>No trials yet.</p>"
    cols = list(rows[0])
    head = "".join(f"<th onclick=\"sortTable('{table_id}', {i})\">{esc(c)}</th>" for i, c in enumerate(cols))
    cells = lambda r: "".join(f'<td data-v="{esc(r[c])}">{esc(_fmt(_cell_kind(c), r[c]))}</td>' for c in cols)  # noqa: E731
    body = "".join(f"<tr>{cells(r)}</tr>" for r in rows)
    return f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pareto_rows(r: StudyResults) -> list[dict[str, Any]]:
    cols = [
        "number",
        *r.objectives,
        "skip_memory_me1",
        "params",
        "macs",
        "skip.type",
        "block.type",
        "depth",
        "width",
        "n_seeds",
        f"{r.objectives[0]}_std",
        A.FRONT_CONFIDENCE,
        A.ARCH_ID,
        A.PRESET,
        A.SUMMARY,
    ]
    out = []
    for _, row in r.front.sort_values(r.objectives[0], ascending=r.directions[0] == "minimize").iterrows():
        out.append(
            {c: (None if isinstance(row.get(c), float) and math.isnan(row.get(c)) else row.get(c)) for c in cols if c in row}
        )
    return out


def build_page(r: StudyResults, live: dict[str, Any] | None = None) -> str:
    """The page of a study: its data (payload.py) drawn by the page's script (page.py)."""
    from .page import build_page as page
    from .payload import payload

    return page(payload(r), live)


def _empty_note(r: StudyResults) -> str:
    """Say why the plots are empty (a fresh study, or no trial completed yet)."""
    if len(r.frame) == 0:
        return "<p class='note'>No trials yet: the plots fill in as the study runs.</p>"
    if not (r.frame["state"] == "COMPLETE").any():
        failed = r.frame[A.FAILURE].dropna().astype(str)
        why = f" Latest failure: {esc(failed.iloc[-1])}" if len(failed) else ""
        return f"<p class='note'>No complete trial yet ({len(r.frame)} trials).{why}</p>"
    return ""


def write_dashboard(directory: str | Path, name: str | None = None) -> Path:
    from .results import load_results

    r = load_results(directory, name)
    path = Path(directory) / "dashboard.html"
    for p in (path, path.with_suffix(".html.tmp")):
        if p.is_dir():
            raise UserError(f"{p}: is a folder; allowed: a folder where skipsearch may write dashboard.html (move it away)")
    return write_page(path, build_page(r))


PAGE_MARK = " - skipsearch</title>"  # in the head of every page skipsearch writes


def write_page(path: Path, text: str) -> Path:
    """Write a page in one step (a reader never sees half of it); a file there that is
    not a page skipsearch wrote is the user's and is refused, not replaced."""
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace")
        if PAGE_MARK not in head:
            raise UserError(f"{path}: exists and is not a page skipsearch wrote; allowed: a new file, or move it away")
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
