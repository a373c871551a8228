"""The in-process backend: one trial at a time, for tests and debugging."""

from __future__ import annotations

import functools
from collections.abc import Callable

from .study import Runner
from .worker import run_trial, trial_config


def run_local(runner: Runner, report: Callable[[str], None]) -> None:
    task = runner.task
    prepared = None
    try:
        while (prepared := runner.next_trial()) is not None:
            result = run_trial(trial_config(prepared, runner), task=task, on_rung=functools.partial(runner.rung, prepared))
            if "failure" in result:
                runner.fail(prepared, result["failure"])
            else:
                runner.complete(prepared, result)
            prepared = None
            report(runner.status())
    except KeyboardInterrupt:
        if prepared is not None:
            runner.interrupt(prepared)
        raise
