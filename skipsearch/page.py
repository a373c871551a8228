"""The dashboard page: one HTML file with plotly embedded and the study's data (payload.py)
in a JSON script element; the page's own script draws everything from that data.

Offline, that is the whole story. Served (serve.py), the same page polls /api/results and
redraws in place with Plotly.react: layouts carry a fixed `uirevision`, so zoom, selection
and hidden legend entries survive every update, and nothing reloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .dashboard import esc, script_json

FIGURES = ("pareto", "front3d", "importance", "timeline", "hypervolume", "parallel")

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4;cursor:pointer}td:last-child{text-align:left}.meta{color:#555;font-size:13px}.note{background:#fff6dd;padding:8px}
#trial{border:2px solid #446;padding:10px 14px;margin:14px 0;background:#fafaff}#trial code{background:#eee;padding:2px 5px}
.pick{margin:6px 0;font-size:14px}.pick input{width:320px;vertical-align:middle}#live{font-size:12px;color:#777}
button{margin-right:6px}"""

SCRIPT = (Path(__file__).parent / "dashboard.js").read_text(encoding="utf-8")


def build_page(data: dict[str, Any], live: dict[str, Any] | None = None) -> str:
    """The page for `data` (payload.payload); `live` ({"poll_ms": ...}) when served."""
    from plotly.offline import get_plotlyjs

    data = {**data, "live": live}
    name = esc(data["study"])
    divs = "\n".join(f'<div id="fig-{f}"></div>' for f in FIGURES[:2])
    rest = "\n".join(f'<div id="fig-{f}"></div>' for f in FIGURES[2:])
    return "\n".join(
        [
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name} - skipsearch</title>",
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>",
            f"<h1>Study {name}</h1><p class='meta' id='meta'>{data['meta']}</p><p id='live'></p>",
            f"<div id='note'>{data['note']}</div>",
            divs,
            "<h2>Best under a budget</h2><div id='pickers'></div>",
            "<div id='trial' hidden></div>",
            "<h2>Compare trials</h2><div id='compare'></div>",
            f"<h2>Pareto trials</h2><div id='pareto-tables'>{data['tables']['pareto']}</div>",
            f"<h2>Skip designs</h2><div id='skip-tables'>{data['tables']['skip']}</div>",
            rest,
            f"<script type='application/json' id='data'>{script_json(data)}</script>",
            f"<script>const FIGURES = {script_json(list(FIGURES))};{SCRIPT}</script>",
            "</body></html>",
        ]
    )
