"""model.py for export bundles: skipsearch's own network code as one torch-only file.

The modules that define a network (spec, layers, blocks, skips, model) are inlined in
dependency order with their intra-package imports removed, so the file builds exactly
the network skipsearch builds (same layers, same state_dict keys, same outputs) and
needs nothing but torch and the standard library.
"""

from __future__ import annotations

import re
from pathlib import Path

from .spec import ArchSpec

PACKAGE = Path(__file__).resolve().parent
MODULES = [
    "errors.py",
    "registry.py",
    "spec.py",
    "layers.py",
    "operators.py",
    "blocks/base.py",
    "blocks/naf.py",
    "blocks/cmrf.py",
    "blocks/conv.py",
    "skips/base.py",
    "skips/none.py",
    "skips/plain.py",
    "skips/msiam_iem.py",
    "skips/sdi.py",
    "skips/dense.py",
    "model.py",
]
LOCAL_IMPORT = re.compile(r"^(\s*)from \.[\w.]* import [^\n]*(\([^)]*\))?$", re.M)
FUTURE = "from __future__ import annotations\n"

HEADER = '''"""Standalone network definition exported by skipsearch (needs only torch).

    import torch, model
    net = model.build()                         # the exported architecture
    from safetensors.torch import load_file     # or torch.load of a state_dict
    net.load_state_dict(load_file("model.safetensors"))

Generated from skipsearch's own modules; the architecture is SPEC below (arch id {arch_id}).
"""
'''


def _strip(source: str) -> str:
    source = source.replace(FUTURE, "")
    source = LOCAL_IMPORT.sub(lambda m: f"{m.group(1)}pass  # (inlined)", source)
    source = re.sub(r"^__all__ = \[[^\]]*\]\n", "", source, flags=re.M)
    return source


def bundle_source(spec: ArchSpec) -> str:
    parts = [HEADER.format(arch_id=spec.arch_id), FUTURE]
    for name in MODULES:
        parts.append(f"\n# ---- skipsearch/{name} " + "-" * max(0, 70 - len(name)) + "\n")
        parts.append(_strip((PACKAGE / name).read_text()))
    parts.append(
        f"\n\nSPEC = {spec.to_json(indent=None)!r}\n\n\n"
        "def build() -> UNet:\n"
        '    """The exported network, freshly initialised (load the weights into it)."""\n'
        "    return UNet(ArchSpec.from_json(SPEC))\n"
    )
    return "".join(parts)
