"""The dashboard in headless Chromium: it renders, draws its plots, logs no errors (slow)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_search import write_study

from skipsearch.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=8000",
]


def chromium(tmp_path, *args):
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_dashboard_renders_without_console_errors(tmp_path):
    path = write_study(tmp_path, n_trials=5, seed_presets="[tiny-naf]")
    assert main(["run", str(path), "--backend", "local"]) == 0
    assert main(["dashboard", str(tmp_path / "t")]) == 0
    page = f"file://{tmp_path / 't' / 'dashboard.html'}"
    dom = chromium(tmp_path, "--dump-dom", page)
    assert dom.returncode == 0
    pareto = dom.stdout.split('id="fig-pareto"', 1)[1].split('id="fig-', 1)[0]
    assert 'class="main-svg"' in pareto and "scatterlayer" in pareto  # plotly drew the Pareto plot
    assert dom.stdout.count('class="main-svg"') >= 6
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    errors = [line for line in console if "Uncaught" in line or "Error" in line]
    assert not errors, errors
    shot = chromium(tmp_path, "--window-size=1400,2400", f"--screenshot={tmp_path / 'dash.png'}", page)
    assert shot.returncode == 0 and (tmp_path / "dash.png").stat().st_size > 50_000


def test_the_live_page_updates_in_place_keeps_its_zoom_and_opens_a_clicked_trial(tmp_path):
    import socket
    import sys
    import time

    from chrome_pipe import Chrome

    path = write_study(tmp_path, n_trials=3)
    assert main(["run", str(path), "--backend", "local"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = [sys.executable, "-m", "skipsearch.cli"]
    server = subprocess.Popen(
        [*cli, "dashboard", str(tmp_path / "t"), "--serve", "--port", str(port)], stderr=subprocess.PIPE, text=True
    )
    chrome = None
    try:
        assert "serving http://127.0.0.1" in server.stderr.readline()
        chrome = Chrome(CHROMIUM, str(tmp_path / "profile"))
        chrome.open(f"http://127.0.0.1:{port}/")
        chrome.wait_for("document.querySelectorAll('#fig-pareto .main-svg').length > 0")
        assert chrome.js("DATA.trials.length") == 3
        chrome.js("window.NOT_RELOADED = 1; Plotly.relayout('fig-pareto', {'xaxis.range': [-0.5, 2.5]}).then(() => true)")
        # a trial finishes while the page is open: the next poll draws it, in place
        more = subprocess.run([*cli, "run", str(path), "--backend", "local", "--trials", "4"], capture_output=True, timeout=300)
        assert more.returncode == 0, more.stderr[-2000:]
        chrome.wait_for("DATA.trials.length == 4", timeout=60)
        assert chrome.js("window.NOT_RELOADED") == 1  # no reload: the page's own state survived
        assert chrome.js("document.getElementById('fig-pareto').layout.xaxis.range") == [-0.5, 2.5]  # the zoom too
        chrome.js("Plotly.relayout('fig-pareto', {'xaxis.autorange': true, 'yaxis.autorange': true}).then(() => true)")
        time.sleep(0.5)
        # a real click on a point of the Pareto plot opens that trial's view
        point = chrome.js(
            "(() => { const p = document.querySelector('#fig-pareto .scatterlayer .trace .points path');"
            " const r = p.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        chrome.click(*point)
        opened = chrome.wait_for("!document.getElementById('trial').hidden && document.querySelector('#trial h2').textContent")
        number = int(opened.split("#", 1)[1].split(" ", 1)[0])
        assert number in chrome.js("DATA.trials.map(t => t.number)")
        assert chrome.js("location.hash") == f"#trial={number}"
        assert chrome.js("document.querySelectorAll('#trial .main-svg').length") >= 2  # its timeline and curve
        assert not chrome.errors(), chrome.errors()
    finally:
        if chrome is not None:
            chrome.close()
        server.terminate()
        server.wait(timeout=60)
