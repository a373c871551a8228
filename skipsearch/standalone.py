"""model.py for export bundles: the one network a spec describes, as a short torch-only file.

The file holds only what the spec uses: its block family's module classes, its skip
design's class (without the cost hooks and validation, which only the search needs), the
shared layers they call, and a UNet class with every channel count written out. No
registry, spec or error machinery: a file to read and paste into a project. Definitions
are copied from skipsearch's own modules (comments and docstrings included), so the file
builds exactly the network skipsearch builds: same layers, same state_dict keys, same
outputs (checked at export and by the contract suite).

How the pieces are found: the network part is generated from the spec (the operators'
code lines, the family's ``arguments`` and the design's ``arguments`` with placeholders
for the names the file defines), then every top-level name it refers to is taken from the
source modules, and so on until nothing new is referred to.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import layers
from .blocks import BLOCKS
from .operators import DOWN, STEM, UP
from .skips import SKIPS
from .skips import base as skip_base
from .spec import ArchSpec

# methods of a skip design that serve the search, not the forward pass
SEARCH_ONLY = ("held", "merged_channels", "begin")


class Name:
    """A placeholder that prints as a name of the generated file (c_in, stage, ...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@dataclass
class Definition:
    name: str
    source: str
    module: str  # the source module's __name__


def bundle_source(spec: ArchSpec) -> str:
    family, design = BLOCKS.get(spec.block.type), SKIPS.get(spec.skip.type)
    fam_mod, design_mod = inspect.getmodule(family), inspect.getmodule(design)
    titles = {
        layers.__name__: "shared layers",
        skip_base.__name__: "helpers of the skip contract",
        fam_mod.__name__: f"block family {family.name!r}",
        design_mod.__name__: f"skip design {design.name!r}",
    }
    network = _network(spec, family, design)
    index, imports = _index([layers, skip_base, fam_mod, design_mod])
    needed = _closure(network, index)
    body, opened = [], set()
    for d in index.values():
        if d.name in needed:
            if d.module not in opened:
                opened.add(d.module)
                body.append(_section(sys.modules[d.module], titles[d.module]))
            body.append(d.source)
    code = "\n\n\n".join(part.strip("\n") for part in [*body, network])
    used = _names(code)
    header = HEADER.format(summary=spec.summary(), arch_id=spec.arch_id, multiple=spec.multiple)
    wanted = sorted({line for name, line in imports.items() if name in used}, key=_import_key)
    groups = [[line for line in wanted if _import_key(line)[0] == torch_group] for torch_group in (False, True)]
    lines = ["from __future__ import annotations", *("\n".join(g) for g in groups if g)]
    spec_line = f"\n\n\nSPEC = {spec.to_json(indent=None)!r}  # the architecture, as skipsearch's spec JSON\n"
    return header + "\n\n".join(lines) + "\n\n\n" + code + spec_line


HEADER = '''"""{summary} (arch id {arch_id}), exported by skipsearch; needs only torch.

    import model
    from safetensors.torch import load_file     # or torch.load of a saved state_dict
    net = model.build()
    net.load_state_dict(load_file("model.safetensors"))

Any input size works: it is padded to a multiple of {multiple} and cropped back.
"""

'''


def _import_key(line: str) -> tuple[bool, bool, str]:
    """The standard library first, then torch; `import x` before `from x import y`."""
    return ("torch" in line.split()[1], line.startswith("from "), line)


def _section(module, title: str) -> str:
    """A comment naming where the following definitions come from, with that module's docstring."""
    story = (inspect.getdoc(module) or "").strip()
    text = "\n".join(f"# {line}".rstrip() for line in story.splitlines())
    return f"# ---- {title} " + "-" * max(4, 80 - len(title)) + "\n" + text


# -- the network ----------------------------------------------------------------------
def _call(cls: type, kwargs: dict[str, Any]) -> str:
    """`Cls(...)`: placeholders positionally where the signature allows, literal values
    by keyword, arguments at their default left out."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    parts, positional = [], True
    for p in params:
        if p.name not in kwargs:
            positional = False
            continue
        value = kwargs[p.name]
        if p.default is not inspect.Parameter.empty and not isinstance(value, Name) and value == p.default:
            positional = False
            continue
        if isinstance(value, Name) and positional and p.kind is not inspect.Parameter.KEYWORD_ONLY:
            parts.append(repr(value))
        else:
            positional = False
            parts.append(f"{p.name}={json.dumps(value) if isinstance(value, str) else repr(value)}")
    return f"{cls.__name__}({', '.join(parts)})"


def _network(spec: ArchSpec, family, design) -> str:
    c_in, c_out, stride, stage_, up_ = (Name(n) for n in ("c_in", "c_out", "stride", "stage", "up"))
    params, dims = dict(spec.block.params), spec.spatial_dims
    volume = {"dims": dims} if dims != 2 else {}  # volumes: every layer-building call says so
    block_call = _call(family.module(params), {**family.arguments(c_in, c_out, params, stride), **volume})
    takes_stride = re.search(r"\bstride\b", block_call) is not None
    skip_kwargs = design.arguments(spec, stage_, up_)
    if volume and "dims" in inspect.signature(design.__init__).parameters:
        skip_kwargs = {**skip_kwargs, **volume}
    out = [_block_fn(family, block_call, takes_stride), _stage_fn(family, takes_stride, dims)]
    if any(v is up_ for v in skip_kwargs.values()):
        out.append(
            f'def up(c_in: int, c_out: int) -> nn.Module:\n    """The up operator ({spec.up})."""\n'
            f"    return {UP.get(spec.up).source(dims=dims)}\n"
        )
    out.append(_unet(spec, design, skip_kwargs))
    out.append(
        'def build() -> UNet:\n    """The exported network, freshly initialised: load the weights into it."""\n'
        "    return UNet()\n"
    )
    return "\n\n".join(out)


def _block_fn(family, call: str, takes_stride: bool) -> str:
    args = "c_in: int, c_out: int" + (", stride: int" if takes_stride else "")
    doc = f"One {family.name} block with this architecture's parameters."
    return f'def block({args}) -> nn.Module:\n    """{doc}"""\n    return {call}\n'


def _stage_fn(family, takes_stride: bool, dims: int = 2) -> str:
    needs = "c_in != c_out" if not family.changes_channels else "c_in != c_out and n == 0"
    why = "this family's blocks keep their channels" if not family.changes_channels else "a stage without blocks"
    return (
        "def stage(c_in: int, c_out: int, n: int, stride: int) -> nn.Sequential:\n"
        '    """n blocks from c_in to c_out channels; `stride` is the level\'s input pixels per\n'
        '    feature pixel."""\n'
        "    layers: list[nn.Module] = []\n"
        f"    if {needs}:  # a 1x1 projection: {why}\n"
        f"        layers.append(projection(c_in, c_out{', 3' if dims == 3 else ''}))\n"
        "        c_in = c_out\n"
        "    for _ in range(n):\n"
        f"        layers.append(block(c_in, c_out{', stride' if takes_stride else ''}))\n"
        "        c_in = c_out\n"
        "    return nn.Sequential(*layers)\n"
    )


def _modules(calls: list[str]) -> str:
    return "nn.ModuleList(\n            [\n" + "".join(f"                {c},\n" for c in calls) + "            ]\n        )"


def _unet(spec: ArchSpec, design, skip_kwargs: dict[str, Any]) -> str:
    ws, d = spec.level_widths, spec.depth
    with torch.device("meta"):
        skip = design.from_spec(spec)  # for the merged channel counts only
    enc, downs, ups, dec, c = [], [], [], [], spec.stem_channels
    for level in range(1, d + 1):
        enc.append(f"stage({c}, {ws[level - 1]}, {spec.enc_blocks[level - 1]}, {2 ** (level - 1)})")
        downs.append(DOWN.get(spec.down).source(ws[level - 1], ws[level], spec.spatial_dims))
        c = spec.down_channels(level)
    for level in range(1, d + 1):
        ups.append(UP.get(spec.up).source(ws[level], ws[level - 1], spec.spatial_dims))
        merged = skip.merged_channels(level, spec.up_channels(level))
        dec.append(f"stage({merged}, {ws[level - 1]}, {spec.dec_blocks[level - 1]}, {2 ** (level - 1)})")
    k = 3 if spec.head == "restore" else 1
    head = f"nn.Conv{spec.spatial_dims}d({ws[0]}, {spec.out_channels}, {k}" + (", padding=1)" if k == 3 else ")")
    restore = spec.head == "restore"
    m = spec.multiple
    if spec.spatial_dims == 2:
        sides = "h, w = x.shape[-2:]"
        pad = f"x = F.pad(x, (0, -w % {m}, 0, -h % {m}))  # zeros right and bottom, cropped off at the end"
        crop = "x[..., :h, :w]"
    else:
        sides = "d, h, w = x.shape[-3:]"
        pad = f"x = F.pad(x, (0, -w % {m}, 0, -h % {m}, 0, -d % {m}))  # zeros after each side, cropped off at the end"
        crop = "x[..., :d, :h, :w]"
    return f'''class UNet(nn.Module):
    """{spec.summary()}"""

    def __init__(self) -> None:
        super().__init__()
        self.stem = {STEM.get(spec.stem).source(spec.in_channels, ws[0], spec.spatial_dims)}
        self.encoder = {_modules(enc)}
        self.downs = {_modules(downs)}
        self.middle = stage({c}, {ws[d]}, {spec.mid_blocks}, {2**d})
        self.skip = {_call(design, skip_kwargs)}
        self.ups = {_modules(ups)}
        self.decoder = {_modules(dec)}
        self.head = {head}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        {sides}
        {pad}
{"        pinned = x  # the restore head adds the input back" + chr(10) if restore else ""}        x = self.stem(x)
        state: dict = {{}}  # what the skip design keeps between encoder and decoder
        for level, (encode, down) in enumerate(zip(self.encoder, self.downs), start=1):
            x = encode(x)
            self.skip.push(state, level, x)
            x = down(x)
        x = self.middle(x)
        for level in range({d}, 0, -1):  # deepest first
            x = self.ups[level - 1](x)
            x = self.skip.pull(state, level, x)
            x = self.decoder[level - 1](x)
        x = self.head(x){" + pinned" if restore else ""}
        return {crop}
'''


# -- finding what the network refers to ------------------------------------------------
def _index(modules) -> tuple[dict[str, Definition], dict[str, str]]:
    """Top-level definitions of the modules (later ones win a shared name) and the import
    line that binds each imported name."""
    index: dict[str, Definition] = {}
    imports: dict[str, str] = {}
    for mod in modules:
        path = Path(inspect.getfile(mod))
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, ast.Import | ast.ImportFrom) and not (isinstance(node, ast.ImportFrom) and node.level):
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    continue
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    imports[bound] = _import_line(node, alias)
                continue
            name = _defined_name(node)
            if name is None:
                continue
            first = min([node.lineno, *(dec.lineno for dec in getattr(node, "decorator_list", []))])
            text = "\n".join(lines[first - 1 : node.end_lineno])
            if isinstance(node, ast.ClassDef) and any(_base_name(b) == "SkipDesign" for b in node.bases):
                text = _strip_design(text)
            elif isinstance(node, ast.ClassDef) and name == "SkipDesign":
                continue  # replaced by nn.Module in the designs
            index[name] = Definition(name, text, mod.__name__)
    return index, imports


def _import_line(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    as_ = f" as {alias.asname}" if alias.asname else ""
    if isinstance(node, ast.Import):
        return f"import {alias.name}{as_}"
    return f"from {node.module} import {alias.name}{as_}"


def _defined_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def _base_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _strip_design(text: str) -> str:
    """A skip design class as the forward pass needs it: no registration, no class
    attributes, no classmethods (validation, arguments, analytic memory) or search hooks;
    an nn.Module."""
    tree = ast.parse(text)
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    lines = text.splitlines()
    drop = set(range(0, cls.lineno - 1))  # decorators
    for child in cls.body:
        is_method = isinstance(child, ast.FunctionDef)
        hook = is_method and (
            child.name in SEARCH_ONLY or any(_base_name(d) in ("classmethod", "staticmethod") for d in child.decorator_list)
        )
        attribute = isinstance(child, ast.Assign | ast.AnnAssign)
        if hook or attribute:
            first = min([child.lineno, *(d.lineno for d in getattr(child, "decorator_list", []))])
            drop.update(range(first - 1, child.end_lineno))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    kept[0] = re.sub(r"\(\s*SkipDesign\s*\)", "(nn.Module)", kept[0])
    out = "\n".join(kept)
    out = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", out)  # no runs of blank lines where members went
    return re.sub(r"(class [^\n]*:\n)\s*\n", r"\1", out)  # nor one right under the class line


def _names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def _closure(network: str, index: dict[str, Definition]) -> set[str]:
    needed: set[str] = set()
    todo = [n for n in _names(network) if n in index]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [n for n in _names(index[name].source) if n in index and n not in needed]
    return needed
