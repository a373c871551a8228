"""Every use of Optuna's private storage API and table layout, in one place (an Optuna
upgrade reads this file).

Writing: drivers share a study through its storage. Each keeps a heartbeat for the trials
it has in flight (Optuna's own heartbeat table, written by a small thread, since Optuna
only beats inside study.optimize), and a trial whose heartbeat went stale belongs to a
dead driver.

Reading: results, the dashboard, export and the identity check read a SQLite study
straight from Optuna's tables, opened read-only (one query per table: a 5,000-trial study
loads in well under a second, where Optuna's ORM takes seconds). A file that is not an
Optuna database (empty, foreign) is refused rather than having tables created in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import UserError

HEARTBEAT_S = 5  # a live driver beats for each of its running trials this often
GRACE_S = 30  # a running trial whose last beat is older than this belongs to a dead driver
DRIVER_PREFIX = "driver:"  # study attribute driver:<id> -> time of the driver's last beat


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
    """A daemon thread that beats for this driver's running trials, and for the driver
    itself (a study attribute driver:<id> holding the time), which tells other drivers
    whether its claims (repeat runs) still stand."""

    def __init__(self, study, driver: str = "") -> None:
        self.study, self.driver, self.ids = study, driver, set()
        self.lock, self.stop = threading.Lock(), threading.Event()
        if beats(study):
            self._beat_driver()
            threading.Thread(target=self._run, name="skipsearch-heartbeat", daemon=True).start()

    def _beat_driver(self) -> None:
        if self.driver:
            self.study.set_user_attr(f"{DRIVER_PREFIX}{self.driver}", time.time())

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
        return {"study": self.study, "driver": self.driver}

    def __setstate__(self, state: dict) -> None:
        self.study, self.driver, self.ids = state["study"], state["driver"], set()
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.stop.set()

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with self.lock:
                ids = list(self.ids)
            with contextlib.suppress(Exception):  # a missed beat is retried; the driver must not die of it
                self._beat_driver()
            for tid in ids:
                with contextlib.suppress(Exception):
                    record_heartbeat(self.study, tid)


def driver_alive(study, driver: str) -> bool:
    """Whether the driver `driver` (host:pid:tag) still runs: on this host its process
    must exist; anywhere, its last beat must be within the grace period."""
    if _gone(driver):
        return False
    beat = study.user_attrs.get(f"{DRIVER_PREFIX}{driver}")
    return isinstance(beat, int | float) and time.time() - beat < GRACE_S


# -- reading without writing ---------------------------------------------------------------
OPTUNA_TABLES = {"studies", "trials", "version_info", "study_user_attributes"}


@dataclass
class TrialRecord:
    """What the results table, dashboard and export need of one trial."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    values: list[float] | None
    user_attrs: dict[str, Any]
    datetime_start: Any = None
    datetime_complete: Any = None


@dataclass
class StoredStudy:
    """What the readers need of a stored study: its name, directions and attributes."""

    study_name: str
    directions: list[str]  # "maximize" / "minimize"
    user_attrs: dict[str, Any]
    trials: list[TrialRecord]


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for other storages or an in-memory database)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def check_sqlite_file(db: Path) -> None:
    """Refuse a file that exists but is not an Optuna SQLite database (nothing is written)."""
    if not db.exists():
        return
    if db.is_dir():
        raise UserError(f"{db}: is a folder; allowed: an Optuna SQLite study database")
    with open(db, "rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        what = "an empty file" if not header else "not an SQLite database"
        raise UserError(f"{db}: {what}; allowed: an Optuna SQLite study database (or no file: a new study)")
    tables = {row[0] for row in _query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables >= OPTUNA_TABLES:
        found = ", ".join(sorted(tables)) or "none"
        raise UserError(f"{db}: an SQLite database without Optuna's tables (tables: {found}); allowed: an Optuna study database")


def _query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error as err:
        raise UserError(f"{db}: cannot read the study database ({err})") from None


def study_names(db: Path) -> list[str]:
    return [r[0] for r in _query(db, "SELECT study_name FROM studies ORDER BY study_id")]


def study_attrs(db: Path, name: str) -> dict[str, Any] | None:
    """A stored study's user attributes; None when the file holds no such study."""
    rows = _query(db, "SELECT study_id FROM studies WHERE study_name = ?", (name,))
    if not rows:
        return None
    return {
        k: json.loads(v) for k, v in _query(db, "SELECT key, value_json FROM study_user_attributes WHERE study_id = ?", rows[0])
    }


def read_study(db: Path, name: str) -> StoredStudy:
    """Study `name` of an (already checked) Optuna SQLite file, read-only."""
    ((study_id,),) = _query(db, "SELECT study_id FROM studies WHERE study_name = ?", (name,))
    sql = "SELECT direction FROM study_directions WHERE study_id = ? ORDER BY objective"
    directions = [str(d).lower() for (d,) in _query(db, sql, (study_id,))]
    trials = read_trials(db, name)
    if trials is None:
        raise UserError(f"{db}: cannot read the trials of study {name!r}")
    return StoredStudy(name, directions, study_attrs(db, name) or {}, trials)


def read_trials(db: Path, name: str) -> list[TrialRecord] | None:
    """All trials straight from Optuna's SQLite tables (one query each); None when the
    file does not look like Optuna's schema."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (study_id,) = con.execute("SELECT study_id FROM studies WHERE study_name = ?", (name,)).fetchone()
            trials = con.execute(
                "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials WHERE study_id = ?", (study_id,)
            ).fetchall()
            values: dict[int, dict[int, float]] = {}
            for tid, objective, value in con.execute(
                "SELECT v.trial_id, v.objective, v.value FROM trial_values v JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                values.setdefault(tid, {})[objective] = value
            attrs: dict[int, dict[str, Any]] = {}
            for tid, key, value in con.execute(
                "SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a "
                "JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                attrs.setdefault(tid, {})[key] = json.loads(value)
        finally:
            con.close()
    except (sqlite3.Error, TypeError, ValueError):
        return None
    out = []
    for tid, number, state, start, complete in trials:
        v = values.get(tid)
        out.append(TrialRecord(number, str(state), [v[i] for i in sorted(v)] if v else None, attrs.get(tid, {}), start, complete))
    return sorted(out, key=lambda t: t.number)
