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
