"""The export bundle's model.py: only the code its spec uses, readable, and the same network
(identical outputs: the contract suite's check_standalone, over every family x design)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from skipsearch import list_blocks, list_skips, preset
from skipsearch.standalone import bundle_source
from skipsearch.testing import small_spec

EVERY = [(b, s) for b in list_blocks() for s in list_skips()]


def top_level_names(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef | ast.ClassDef)]


@pytest.mark.parametrize("block, skip", EVERY, ids=[f"{b}-{s}" for b, s in EVERY])
def test_every_class_and_function_is_used(block, skip):
    source = bundle_source(small_spec(block, skip, 4))
    tree = ast.parse(source)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    unused = [name for name in top_level_names(source) if name not in loaded and name != "build"]
    assert not unused, f"{block} + {skip}: unused {unused}"
    for other in set(list_skips()) - {skip}:  # no other design's code came along
        assert f"skip design {other!r}" not in source


def test_only_the_specs_own_code_is_in_it():
    source = bundle_source(small_spec("cmrf", "none", 4))
    assert len(source.splitlines()) < 300
    names = set(top_level_names(source))
    assert {"CMRFBlock", "NoSkip", "UNet", "build"} <= names
    for foreign in ("NAFBlock", "ConvUnit", "PlainSkip", "ArchSpec", "Registry", "SpecError", "SKIPS", "BLOCKS"):
        assert foreign not in source
    for hook in ("analytic", "held", "merged_channels", "resolve", "arguments"):
        assert f"def {hook}" not in source


def test_tlc_code_comes_only_with_tlc():
    plain = bundle_source(preset("nafnet-sidd-w32"))
    local = bundle_source(preset("nafnet-gopro-w32"))
    assert "NAFLocalBlock" not in plain and "local_mean" not in plain
    assert "NAFLocalBlock(c_out, tlc_train_size=256, stride=stride)" in local and "def local_mean" in local


def test_model_py_is_clean_python(tmp_path):
    """No undefined or unused names (pyflakes' rules), for every family x design."""
    for block, skip in EVERY:
        (tmp_path / f"{block}_{skip}.py").write_text(bundle_source(small_spec(block, skip, 3)))
    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run(
        [str(ruff), "check", "--no-cache", "--isolated", "--select", "F", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
