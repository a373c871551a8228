"""The in-process backend, for tests and debugging.

With schedule: sync it runs the study's `concurrency` workers in one process (pool.py):
each trial trains in a thread of its own, one at a time, and waits at a rung for its
verdict while others train, so a local run takes the decisions a Ray run would (a thread
keeps its own random state across the switches). With schedule: async, one trial at a
time, each to its end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from .study import Runner
from .worker import run_trial, trial_config

POLL_S = 0.5  # how often a waiting driver looks up (so that Ctrl-C is seen)


def run_local(runner: Runner, report: Callable[[str], None]) -> None:
    if runner.cfg.schedule == "sync":
        import torch

        from .pool import Pool

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(runner.cfg.cpus)))  # a trial's CPUs, as Ray gives it: the same sums
        try:
            Pool(runner, runner.cfg.concurrency, lambda p: (_threaded(trial_config(p, runner), runner.task), None), report).run()
        finally:
            torch.set_num_threads(threads)
        return
    job = None
    try:
        while (job := runner.next_trial()) is not None:
            job.finish(run_trial(trial_config(job, runner), task=runner.task, on_rung=job.rung))
            job = None
            report(runner.status())
    except KeyboardInterrupt:
        if job is not None:
            job.interrupt()
        raise


def _threaded(config: dict[str, Any], task):
    """A trial trained in its own thread, as a pool job: it runs only while the pool waits
    for its next event, so one trial trains at a time."""
    import torch

    to_job: queue.Queue = queue.Queue()
    to_pool: queue.Queue = queue.Queue()

    def on_rung(step: int, metrics: dict[str, Any]) -> bool:
        state = torch.get_rng_state()  # other trials train while this one waits
        to_pool.put(("rung", step, metrics))
        go = to_job.get()
        torch.set_rng_state(state)
        return go

    def work() -> None:
        try:
            to_job.get()
            to_pool.put(("done", run_trial(config, task=task, on_rung=on_rung)))
        except _Stop:
            pass

    thread = threading.Thread(target=work, name=f"skipsearch-trial-{config['number']}", daemon=True)
    thread.start()
    to_job.put(True)
    try:
        while True:
            event = _get(to_pool)
            if event[0] == "done":
                return event[1]
            to_job.put((yield event[1], event[2]))
    finally:
        _stop(thread, to_job)


class _Stop(BaseException):
    """Raised inside a trial's thread when the driver stops (Ctrl-C)."""


def _stop(thread: threading.Thread, wake: queue.Queue) -> None:
    """End a trial's thread that is still training (the driver was stopped): it is raised
    _Stop between two Python steps and joined, so the process never exits under a thread
    still inside torch."""
    import ctypes

    if not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_Stop))
    wake.put(False)  # a thread waiting at a rung runs on into the _Stop
    thread.join(timeout=30)


def _get(q: queue.Queue):
    while True:
        try:
            return q.get(timeout=POLL_S)
        except queue.Empty:
            continue
