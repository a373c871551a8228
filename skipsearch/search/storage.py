"""Every use of Optuna's private storage API, in one place (an Optuna upgrade reads this file).

Drivers share a study through its storage: each keeps a heartbeat for the trials it has in
flight (Optuna's own heartbeat table, written by a small thread, since Optuna only beats
inside study.optimize), and a trial whose heartbeat went stale belongs to a dead driver.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
from datetime import datetime, timedelta
from typing import Any

HEARTBEAT_S = 5  # a live driver beats for each of its running trials this often
GRACE_S = 30  # a running trial whose last beat is older than this belongs to a dead driver


def make_storage(url: str) -> Any:
    """The storage object for a study URL: RDB with heartbeats, or None (in memory)."""
    import optuna

    if url == "memory://":
        return None
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():  # heartbeats are marked experimental; the user need not hear of it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)


def ask(study):
    """study.ask() without Optuna's warning that heartbeats belong to study.optimize: this
    driver beats for its trials itself (Heartbeat below)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed", category=UserWarning)
        return study.ask()


def _backend(study) -> Any:
    storage = study._storage
    return getattr(storage, "_backend", storage)  # Optuna wraps RDB storage in a cache


def trial_id(trial) -> int:
    return trial._trial_id


def beats(study) -> bool:
    return getattr(_backend(study), "heartbeat_interval", None) is not None


def record_heartbeat(study, tid: int) -> None:
    if beats(study):
        _backend(study).record_heartbeat(tid)


def stale_trial_ids(study) -> set[int]:
    """Running trials of dead drivers: a stale heartbeat, or none at all past the grace
    period (a driver killed right after asking, or a study from before heartbeats)."""
    backend = _backend(study)
    if not beats(study):
        return set()
    stale = set(backend._get_stale_trial_ids(study._study_id))
    beating = _beating_ids(backend, study._study_id)
    old = datetime.now() - timedelta(seconds=GRACE_S)
    for t in study.get_trials(deepcopy=False, states=(_running(),)):
        driver = t.user_attrs.get("driver")
        if _gone(driver) or (t._trial_id not in beating and (driver is None or (t.datetime_start or old) <= old)):
            stale.add(t._trial_id)
    return stale


def _gone(driver: str | None) -> bool:
    """A driver on this host whose process no longer exists (killed: no need to wait for
    its heartbeat to go stale)."""
    host, _, rest = (driver or "").partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _beating_ids(backend, study_id: int) -> set[int]:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        rows = (
            session.query(models.TrialHeartbeatModel.trial_id)
            .join(models.TrialModel, models.TrialModel.trial_id == models.TrialHeartbeatModel.trial_id)
            .filter(models.TrialModel.study_id == study_id)
            .all()
        )
    return {r[0] for r in rows}


def _running():
    import optuna

    return optuna.trial.TrialState.RUNNING


def fail_trial(study, tid: int, reason: str) -> bool:
    """Mark a running trial FAIL with `reason`; False if it had finished meanwhile."""
    import optuna

    storage = study._storage
    try:
        storage.set_trial_user_attr(tid, "failure", reason)
        return storage.set_trial_state_values(tid, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


class Heartbeat:
    """A daemon thread that beats for this driver's running trials."""

    def __init__(self, study) -> None:
        self.study, self.ids = study, set()
        self.lock, self.stop = threading.Lock(), threading.Event()
        if beats(study):
            threading.Thread(target=self._run, name="skipsearch-heartbeat", daemon=True).start()

    def add(self, tid: int) -> None:
        record_heartbeat(self.study, tid)  # at once: a trial never waits a full interval for its first beat
        with self.lock:
            self.ids.add(tid)

    def discard(self, tid: int) -> None:
        with self.lock:
            self.ids.discard(tid)

    def close(self) -> None:
        self.stop.set()

    def __getstate__(self) -> dict:
        # Ray Tune pickles its search algorithm (and with it the runner) to save its own
        # state; a copy must not beat, so it arrives stopped and empty.
        return {"study": self.study}

    def __setstate__(self, state: dict) -> None:
        self.study, self.ids = state["study"], set()
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.stop.set()

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with self.lock:
                ids = list(self.ids)
            for tid in ids:
                with contextlib.suppress(Exception):  # a missed beat is retried; the driver must not die of it
                    record_heartbeat(self.study, tid)
