"""run_study: what `skipsearch run` does, callable from Python.

Loads and checks the study file (or takes a loaded StudyConfig), opens or resumes the
stored study, and runs trials on a backend until the study has its n_trials: `ray` (a
local Ray, or a cluster at `address`) or `local` (in-process). Progress lines go to
`report`. Ctrl-C stops cleanly: running trials are recorded as interrupted.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from .config import MAX_TRIALS, StudyConfig, load_study
from .storage import shown_url

BACKENDS = ("ray", "local", "tabular")


@dataclass
class RunOutcome:
    config: StudyConfig
    study: Any  # optuna.Study
    finished: bool  # False when stopped (Ctrl-C) before the study had all its trials
    status: str  # the last progress line

    @property
    def front(self) -> list:
        """The Pareto front of the trained architectures (each once), on the means over
        their seeds where the front was repeated, most accurate first (FrontMember)."""
        from .rungs import front_members

        return front_members(self.study, self.config)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_study(
    study: str | Path | StudyConfig,
    *,
    trials: int | None = None,
    backend: str = "ray",
    address: str | None = None,
    report: Callable[[str], None] = _stderr,
) -> RunOutcome:
    """Run (or resume) a study until it has its trials; `trials` overrides n_trials."""
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
            raise UserError(f"{trials!r}; allowed: an integer 1-{MAX_TRIALS:,} (the study's total)", field="trials")
        cfg.n_trials = trials
    if backend not in BACKENDS:
        raise UserError(f"{backend!r}; allowed: {', '.join(BACKENDS)}", field="backend")
    table = _table(cfg) if backend == "tabular" else None  # checked before the study is touched
    with _packing(cfg, backend, address) as gpus:
        runner = make_runner(cfg, gpus)
        runner.say = report
        try:
            return _run(runner, cfg, backend, address, report, table)
        finally:
            runner.close()


def make_runner(cfg: StudyConfig, gpus: Any = None):
    """The study's runner: deterministic (schedule: sync) or as trials arrive (async)."""
    if cfg.schedule == "sync":
        from .sync import SyncRunner

        return SyncRunner(cfg, gpus)
    from .study import Runner

    return Runner(cfg, gpus)


@contextlib.contextmanager
def _packing(cfg: StudyConfig, backend: str, address: str | None):
    """gpus: auto: the cluster's GPUs (Ray connected first, so a cluster without GPUs or
    too small for the study is refused before the study is touched); None otherwise."""
    if cfg.gpus != "auto":
        yield None
        return
    if backend != "ray":
        msg = "auto packs Ray trials onto GPUs; allowed with the ray backend (the default), or gpus: a number"
        raise UserError(f"{cfg.path}: resources.gpus: {msg}")
    import ray

    from .gpus import check_fits, cluster_gpus
    from .ray_backend import connect

    started = connect(address)
    try:
        gpus = cluster_gpus(cfg)
        if gpus.source == "measured":  # a stated figure was checked when the file was read
            check_fits(cfg, cfg.make_task(), gpus)
        yield gpus
    finally:
        if started:
            ray.shutdown()


def _run(runner, cfg: StudyConfig, backend: str, address: str | None, report, table) -> RunOutcome:
    if runner.recovered:
        report(f"resumed: {runner.recovered} trial(s) left running by an interrupted run were marked failed (interrupted)")
    report(f"study {cfg.name!r}: {shown_url(cfg.storage)} | {runner.status()}")  # no password on the terminal
    for line in runner.task.notes(cfg.budget.size):
        report(f"note: {line}")
    try:
        _dispatch(runner, backend, address, report, table)
        runner.duplicates.drain()  # duplicates of trials another driver is training take their results
    except KeyboardInterrupt:
        runner.duplicates.abandon()
        report(f"stopped: {runner.status()}")
        return RunOutcome(cfg, runner.study, False, runner.status())
    finished = runner.remaining() <= 0  # Ray Tune handles Ctrl-C itself and returns early
    status = runner.status()
    report(f"{'done' if finished else 'stopped'}: {status}")
    return RunOutcome(cfg, runner.study, finished, status)


def _table(cfg: StudyConfig):
    from .tabular import Table

    if cfg.table is None:
        example = "table: ../bench/data/tabular-shapes.json.gz"
        raise UserError(f"{cfg.path}: table: missing; the tabular backend needs a table, e.g. {example}")
    table = Table.load(cfg.table)
    table.check_covers(cfg, cfg.make_task())
    return table


def _dispatch(runner, backend: str, address: str | None, report: Callable[[str], None], table=None) -> None:
    if backend == "tabular":
        from .tabular import run_tabular

        run_tabular(runner, report, table)
    elif backend == "local":
        from .local_backend import run_local

        run_local(runner, report)
    else:
        from .ray_backend import run_ray

        run_ray(runner, report, address)
