"""Command line: presets listing, spec JSON, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

from skipsearch import ArchSpec, list_presets
from skipsearch.cli import main


def test_presets_json(capsys):
    assert main(["presets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["presets"]
    assert [r["name"] for r in rows] == list_presets()
    by = {r["name"]: r for r in rows}
    assert by["unet"]["params"] == 7_759_521 and by["unetpp"]["params"] == 9_041_601


def test_presets_table(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "nafnet-sidd-w32" in out and "29,159,715" in out


def test_show_prints_spec_json(capsys):
    assert main(["presets", "--show", "unetmm-mid"]) == 0
    spec = ArchSpec.from_json(capsys.readouterr().out)
    assert spec.skip["target"] == "mid" and spec.skip["level"] == 3


def test_unknown_preset_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "skipsearch.cli", "presets", "--show", "nafnet"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "field 'preset'" in lines[0] and "nafnet-sidd-w32" in lines[0]
