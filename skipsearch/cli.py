"""The `skipsearch` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .errors import SpecError, TrainingError, UserError
from .search import attrs as A


def _meta_params(spec) -> int:
    import torch

    from .model import build_model

    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


def _preset(name: str, option: str):
    """A preset by name; an unknown one is an error naming the option that gave it."""
    from .presets import preset

    try:
        return preset(name)
    except SpecError as err:
        raise UserError(f"{option}: {err}") from None


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import describe_preset, list_presets, preset

    if args.show:
        print(_preset(args.show, "--show").to_json())
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


def load_spec(args: argparse.Namespace):
    """The spec named by --preset, or read from --spec FILE (or - for standard input)."""
    from .spec import ArchSpec

    if args.preset:
        return _preset(args.preset, "--preset")
    from .files import read_text

    source = "<stdin>" if args.spec == "-" else args.spec
    text = sys.stdin.read() if args.spec == "-" else read_text(Path(args.spec), "spec")
    try:
        return ArchSpec.from_json(text)
    except SpecError as err:
        raise UserError(f"{source}: {err}") from None


def _digits(part: str) -> bool:
    return re.fullmatch(r"[0-9]{1,12}", part) is not None  # ASCII digits only ('²' is a digit to str.isdigit)


def parse_input(text: str, dims: int = 2) -> tuple[int, ...]:
    parts = text.lower().split("x")
    form, example = ("CxHxW", "3x256x256") if dims == 2 else ("CxDxHxW", "1x64x64x64")
    if len(parts) != 1 + dims or not all(_digits(p) and int(p) > 0 for p in parts):
        what = "three" if dims == 2 else "four (a volume network)"
        raise UserError(f"--input: {text!r} is not {form}; allowed: {what} positive integers, e.g. {example}")
    return tuple(int(p) for p in parts)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.2f} MiB"


def print_profile(name: str, prof) -> None:
    shown = "x".join(map(str, prof.input_shape))
    print(f"{name} ({prof.arch_id})  input {shown}  batch {prof.batch}  {prof.dtype}  on {prof.device}")
    rows = [
        ("params", f"{prof.params:,}"),
        ("MACs (thop)", f"{prof.macs / 1e9:,.3f} G"),
        ("FLOPs (FlopCounterMode)", f"{prof.flops / 1e9:,.3f} G"),
        ("M_E1 (bytes of E1)", _mib(prof.m_e1_bytes)),
        (
            "skip memory",
            f"{_mib(prof.skip_memory_bytes)}  = {prof.skip_memory_me1:.4g} M_E1"
            f"  (analytic {_mib(prof.skip_memory_analytic_bytes)})",
        ),
        ("peak activations", _mib(prof.peak_activation_bytes)),
    ]
    if prof.cuda_peak_activation_bytes is not None:
        rows.append(("CUDA peak (max_memory_allocated)", _mib(prof.cuda_peak_activation_bytes)))
    for label, value in rows:
        print(f"  {label:<34} {value}")
    print(f"\n  {'stage':<12} {'skip memory':>14} {'M_E1':>8} {'live activations':>18}  held")
    for s in prof.timeline:
        held = ", ".join(f"{k} {v / prof.m_e1_bytes:.3g}" for k, v in s.levels.items() if v)
        print(f"  {s.name:<12} {_mib(s.skip_bytes):>14} {s.skip_bytes / prof.m_e1_bytes:>8.4g} {_mib(s.live_bytes):>18}  {held}")


def cmd_profile(args: argparse.Namespace) -> int:
    from .costs.fit import check_sizes
    from .costs.profile import profile

    spec = load_spec(args)
    from .costs.profile import DEFAULT_SIDE

    d = spec.spatial_dims
    shape = parse_input(args.input, d) if args.input else (spec.in_channels, *(DEFAULT_SIDE[d],) * d)
    sides = shape[1:]
    source = args.preset or ("<stdin>" if args.spec == "-" else args.spec)
    what = f"{source}: input {'x'.join(map(str, shape))}, batch {args.batch}"
    if args.batch >= 1:  # a batch below 1 is the library's to refuse
        check_sizes(spec, args.batch, sides, what)
    try:
        prof = profile(spec, shape, batch=args.batch, dtype=args.dtype, device=args.device)
    except OverflowError:  # thop counts in 64-bit integers
        raise UserError(
            f"{what}: too large to profile (its counts exceed 64-bit integers); allowed: a smaller size, batch or width"
        ) from None
    except UserError as err:  # the library names its arguments (input, batch, ...): here they are options
        head, _, rest = str(err).partition(": ")
        if head in ("input", "batch", "dtype", "device"):
            raise UserError(rest, field=head) from None
        raise UserError(f"{source}: {err}") from None  # the memory it needs: name the architecture
    if args.checkpoint and not args.train:
        raise UserError("checkpointing is a training option; allowed: with --train", field="checkpoint")
    train = _train_memory(args, spec, sides, what) if args.train else None
    if args.json:
        print(json.dumps({"name": args.preset or args.spec, **prof.to_dict(), **(train.to_dict() if train else {})}))
    else:
        print_profile(args.preset or args.spec, prof)
        if train:
            print_train_memory(train)
    return 0


def _train_memory(args: argparse.Namespace, spec, size: tuple[int, ...], what: str):
    """One training step's peak at the input size and batch (AdamW, the default budget)."""
    from .costs.fit import check_fits, training_bytes
    from .costs.training import train_memory
    from .train import Budget

    if args.dtype != "float32":
        raise UserError(f"{args.dtype!r} with --train: a training step is measured in float32; allowed: float32", field="dtype")
    if args.device != "meta":
        check_fits(training_bytes(spec, args.batch, size), args.device, f"{what}, training step")
    return train_memory(spec, Budget(batch=args.batch, size=size, checkpoint=args.checkpoint), device=args.device)


def print_train_memory(t) -> None:
    how = ", levels checkpointed" if t.checkpoint else ""
    size = "x".join(map(str, t.size))
    print(f"\n  training step (AdamW, batch {t.batch}, {size}{how}, on {t.device}): peak {_mib(t.peak_bytes)}")
    for label, value in (("weights", t.weights), ("gradients", t.gradients), ("optimizer", t.optimizer)):
        print(f"    {label:<32} {_mib(value)}")
    print(f"    {'activations (saved, temporaries)':<32} {_mib(t.activations)}")


def parse_size(text: str, dims: int = 2) -> tuple[int, ...]:
    """HxW (or DxHxW for volumes); one number N means N on every side."""
    from .train import MAX_SIDE

    parts = text.lower().split("x")
    if len(parts) == 1:
        parts = parts * dims
    form, example = ("HxW", "64x64") if dims == 2 else ("DxHxW", "32x64x64")
    if len(parts) != dims or not all(_digits(p) and 8 <= int(p) <= MAX_SIDE for p in parts):
        allowed = f"one or {'two' if dims == 2 else 'three'} integers >= 8 and <= {MAX_SIDE}, e.g. {example}"
        raise UserError(f"--size: {text!r} is not {form}; allowed: {allowed}")
    return tuple(int(p) for p in parts)


def cmd_train(args: argparse.Namespace) -> int:
    import inspect

    from .outputs import check_target
    from .search.fields import did_you_mean
    from .tasks import TASKS, list_tasks, make_task
    from .train import Budget, check_budget_fits, check_data_fits, evaluate, resolve_device

    spec = load_spec(args)
    if args.task not in list_tasks():
        hint = did_you_mean(args.task, list_tasks())
        raise UserError(f"--task: unknown task {args.task!r}; allowed: {', '.join(list_tasks())}{hint}")
    takes_data = [name for name in list_tasks() if "data" in inspect.signature(TASKS.get(name).__init__).parameters]
    if args.data is not None and args.task not in takes_data:
        raise UserError(f"--data: not used by task {args.task}; allowed: --data with {', '.join(takes_data)}")
    options = {"data": args.data} if args.data is not None else {}
    task = make_task(args.task, **options)
    try:
        fitted = task.adapt(spec)
    except SpecError as err:  # a volume network on an image task, or back: name the spec
        source = args.preset or ("<stdin>" if args.spec == "-" else args.spec)
        raise UserError(f"{source}: {err}") from None
    try:
        budget = Budget(
            steps=args.steps,
            batch=args.batch,
            size=parse_size(args.size, task.spatial_dims),
            lr=args.lr,
            seed=args.seed,
            device=args.device,
        )
    except UserError as err:  # the library names budget fields; here they are options
        raise UserError(str(err).replace("budget ", "--", 1)) from None
    if args.out:
        check_target(Path(args.out), "training output")  # before the data is even read
    try:
        check_budget_fits(fitted, budget, resolve_device(budget.device))  # before any data is decoded
    except UserError as err:
        if err.field:
            raise
        raise UserError(f"{args.preset or ('<stdin>' if args.spec == '-' else args.spec)}: {err}") from None
    check_data_fits(task, budget)
    if hasattr(task, "check"):
        task.check(budget.size)  # bad files fail here, before anything is trained or written
    for line in task.notes(budget.size):
        print(f"note: {line}", file=sys.stderr)
    if fitted != spec:  # said once everything is checked: an error stays one line
        changes = [
            f"{k} {getattr(spec, k)!r} -> {getattr(fitted, k)!r}"
            for k in ("in_channels", "out_channels", "head")
            if getattr(spec, k) != getattr(fitted, k)
        ]
        print(f"note: adapted the spec to task {task.name}: {', '.join(changes)}", file=sys.stderr)
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=budget.steps, desc=f"train {task.name}", unit="step", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}")

    try:
        result = evaluate(fitted, task, budget, out=args.out, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    result = {"arch_id": fitted.arch_id, "task": task.name, **result}
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"  {k:<14} {v:.4f}" if isinstance(v, float) else f"  {k:<14} {v}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .search.config import MAX_TRIALS
    from .search.run import run_study

    if args.trials is not None and not 1 <= args.trials <= MAX_TRIALS:
        raise UserError(f"--trials: {args.trials}; allowed: an integer >= 1 and <= {MAX_TRIALS:,} (the study's total)")
    outcome = run_study(args.study, trials=args.trials, backend=args.backend, address=args.address)
    if not outcome.finished:
        return 130
    print_front(outcome)
    return 0


def print_front(outcome) -> None:
    from .objectives import format_value

    names = [o.name for o in outcome.config.objectives]
    front = outcome.front
    print(f"Pareto front of {outcome.config.name!r} ({len(front)} architectures):")
    for m in front:
        figures = []
        for i, name in enumerate(names):
            column = [row[i] for row in m.seeds]
            spread = f" ± {statistics.stdev(column):.2g}" if len(column) > 1 and max(column) > min(column) else ""
            figures.append(f"{name} {format_value(name, m.values[i])}{spread}")
        seeds = f"{len(m.seeds)} seed{'s' if len(m.seeds) > 1 else ''}"
        sure = f"{seeds}, on the front in {m.confidence:.0%} of resamples" if m.confidence is not None else seeds
        print(f"  #{m.number:<4} {'  '.join(figures)}  ({sure})  {A.summary(m.trial)}")
    for line in undecided_notes(outcome.config, front):
        print(line)


def undecided_notes(cfg, front) -> list[str]:
    """A line for each raced member whose place on the front is still undecided (racing's
    run budget was spent first): the figure it is printed with is less sure than the rest."""
    rep = cfg.repeats
    if rep is None or rep.seeds < 2:
        return []
    level = rep.confidence
    runs = f"runs: {rep.run_budget}" if rep.run_budget < 10**9 else "no limit on runs"
    return [
        f"  note: #{m.number} is undecided (on the front in {m.confidence:.0%} of resamples; {level:.0%} decides): "
        f"racing stopped at its limits (max_seeds: {rep.seeds}, {runs}); raise repeats.runs or max_seeds to decide it"
        for m in front
        if m.confidence is not None and 1 - level < m.confidence < level
    ]


def cmd_results(args: argparse.Namespace) -> int:
    from .results import load_results, write_table

    if args.format not in ("csv", "parquet", "json"):
        raise UserError(f"--format: {args.format!r}; allowed: csv, parquet, json")
    if args.out:
        _check_out_file(Path(args.out))
    text = write_table(load_results(args.study_dir, args.study), args.format, args.out)
    if text is not None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _check_out_file(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"--out: {str(path)!r} is a folder; allowed: a file path")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"--out: {str(path.parent)!r} is a file; allowed: a file in an existing folder")
    if not path.parent.is_dir():
        raise UserError(f"--out: folder {str(path.parent)!r} does not exist; allowed: a file in an existing folder")


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_pareto, export_trial
    from .results import load_results

    results = load_results(args.study_dir, args.study)
    out = Path(args.out) if args.out else Path(args.study_dir) / "exports"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {str(out)!r} is a file; allowed: a folder for the bundles")
    paths = export_pareto(results, out, args.force) if args.pareto else [export_trial(results, args.trial, out, args.force)]
    for p in paths:
        checks = json.loads((p / "checks.json").read_text())
        print(f"{p}  ({', '.join(f'{k.split()[0]} {v:.1e}' for k, v in checks.items())})")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .dashboard import write_dashboard

    dirs = args.study_dir
    if len(dirs) > 1:  # several studies: one page overlaying their fronts
        from .compare import write_compare

        if args.serve:
            raise UserError("--serve: one study at a time; allowed: dashboard STUDY_DIR --serve (compare pages are files)")
        print(write_compare(dirs, args.out, args.study))
        return 0
    if args.out:
        raise UserError("--out: only for comparing studies (dashboard A B ...); one study's page is STUDY_DIR/dashboard.html")
    if args.serve:
        from .serve import check_port

        check_port(args.port, args.host)
    elif args.host != "127.0.0.1":
        raise UserError(f"--host: {args.host!r} without --serve; allowed: --serve --host HOST")
    path = write_dashboard(dirs[0], name=args.study)
    print(path)
    if args.serve:
        from .serve import serve

        serve(Path(dirs[0]), args.port, name=args.study, host=args.host)
    return 0


def add_spec_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME")
    src.add_argument("--spec", metavar="FILE", help="spec JSON file, or - for standard input")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="skipsearch", description="Architecture search over U-Net skip designs.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error (or SKIPSEARCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("presets", help="list the named architectures, or print one as spec JSON")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--show", metavar="NAME", help="print the spec JSON of one preset")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("profile", help="params, MACs, FLOPs, skip memory and its timeline for one architecture")
    add_spec_source(p)
    p.add_argument("--input", metavar="CxHxW", help="input size (default: the spec's channels x 256 x 256)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
    p.add_argument("--device", default="meta", help="meta (exact, instant), cpu or cuda (real tensors)")
    p.add_argument("--train", action="store_true", help="also the peak memory of one training step, with its breakdown")
    p.add_argument("--checkpoint", action="store_true", help="with --train: each level recomputed in backward")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("train", help="train one architecture on a task and print its validation metrics")
    add_spec_source(p)
    p.add_argument("--task", required=True, help="shapes, shapes3d, photos-denoise, folder-seg, folder-restore, nnunet-raw")
    p.add_argument("--data", metavar="DIR", help="dataset folder (folder-seg, folder-restore, nnunet-raw)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument(
        "--size",
        default="64",
        metavar="HxW|DxHxW",
        help="training size: image or crop; for nnunet-raw the patch and sliding-window tile (N: N on every side)",
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", metavar="DIR", help="write model.safetensors, spec.json and metrics.json here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="run (or resume) a search study from its YAML file")
    p.add_argument("study", metavar="STUDY.yaml")
    p.add_argument("--trials", type=int, help="the study's total number of trials (overrides n_trials)")
    p.add_argument("--address", help="a running Ray cluster (e.g. auto or HOST:6379); default: start a local Ray")
    p.add_argument(
        "--backend",
        choices=["ray", "local", "tabular"],
        default="ray",
        help="ray (default), local (in-process) or tabular (answered from the study's table: a benchmark)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "dashboard",
        help="write STUDY_DIR/dashboard.html (self-contained); --serve: a live page; several folders: compare their fronts",
    )
    p.add_argument("study_dir", metavar="STUDY_DIR", nargs="+")
    p.add_argument("--serve", action="store_true", help="serve a live page (it updates in place while a study runs)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1", help="with --serve: the address to listen on (default 127.0.0.1)")
    p.add_argument("--out", metavar="FILE", help="comparing studies: the page (default: the first folder's compare.html)")
    p.add_argument("--study", help="the study's name, when the folder holds several")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("results", help="one row per trial: spec fields, objectives, costs, state, reasons")
    p.add_argument("study_dir", metavar="STUDY_DIR")
    p.add_argument("--format", default="csv", help="csv (default), parquet or json")
    p.add_argument("--out", metavar="FILE", help="write here (parquet default: STUDY_DIR/results.parquet)")
    p.add_argument("--study", help="the study's name, when the folder holds several")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("export", help="export trials as bundles: safetensors, ONNX, TorchScript, model.py, model card")
    p.add_argument("study_dir", metavar="STUDY_DIR")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pareto", action="store_true", help="every feasible trial on the Pareto front")
    which.add_argument("--trial", type=int, metavar="N")
    p.add_argument("--out", metavar="DIR", help="default: STUDY_DIR/exports")
    p.add_argument("--force", action="store_true", help="replace the files of bundles that already exist")
    p.add_argument("--study", help="the study's name, when the folder holds several")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("SKIPSEARCH_DEBUG", "") not in ("", "0")
    say = lambda text: print(f"skipsearch {args.command}: {text}", file=sys.stderr)  # noqa: E731
    try:
        return args.func(args)
    except (SpecError, UserError) as err:
        say(f"error: {_one_line(_as_options(err, args))}")
        return 2
    except TrainingError as err:
        say(f"training failed: {_one_line(err)}")
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the user's file system: a read-only folder, a full disk, ...
        if debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        say(f"error: {where}{err.strerror or _one_line(err)}")
        return 2
    except Exception as err:
        if debug:
            raise
        hint = f"run `skipsearch --debug {args.command} ...` or set SKIPSEARCH_DEBUG=1 for the traceback"
        say(f"internal error: {type(err).__name__}: {_one_line(err)} ({hint})")
        return 1


def _as_options(err: Exception, args: argparse.Namespace) -> str:
    """A library error in the command line's words: fields that are options of this
    command are named as options (trial -> --trial, force -> --force, data -> --data)."""
    text = str(err)
    field = getattr(err, "field", None)
    if isinstance(err, UserError) and field and hasattr(args, field):
        text = f"--{field.replace('_', '-')}: {err.message}"
    for option in ("force", "data"):
        if hasattr(args, option):
            text = text.replace(f"or {option} to", f"or --{option} to").replace(f"option {option} is", f"--{option} is")
    return text


def _one_line(err: BaseException | str) -> str:
    text = " ".join(str(err).split())
    return text[:1000] if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
