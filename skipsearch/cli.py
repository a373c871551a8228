"""The `skipsearch` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from .errors import SpecError, UserError

Command = Callable[[argparse.Namespace], int]


def _meta_params(spec) -> int:
    import torch

    from .model import build_model

    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import describe_preset, list_presets, preset

    if args.show:
        print(preset(args.show).to_json())
        return 0
    rows = []
    for name in list_presets():
        spec = preset(name)
        rows.append(
            {
                "name": name,
                "arch_id": spec.arch_id,
                "params": _meta_params(spec),
                "block": spec.block.type,
                "skip": spec.skip.type,
                "depth": spec.depth,
                "width": spec.width,
                "description": describe_preset(name),
            }
        )
    if args.json:
        print(json.dumps({"presets": rows}))
        return 0
    print(f"{'name':<18} {'params':>12}  {'block':<5} {'skip':<10} description")
    for r in rows:
        print(f"{r['name']:<18} {r['params']:>12,}  {r['block']:<5} {r['skip']:<10} {r['description']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skipsearch", description="Architecture search over U-Net skip designs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("presets", help="list the named architectures, or print one as spec JSON")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--show", metavar="NAME", help="print the spec JSON of one preset")
    p.set_defaults(func=cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, UserError) as err:
        print(f"skipsearch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
