"""Every use of Optuna's private storage API and table layout, in one place (an Optuna
upgrade reads this file).

Writing: drivers share a study through its storage. Each keeps a heartbeat for the trials
it has in flight (Optuna's own heartbeat table, written by a small thread, since Optuna
only beats inside study.optimize), and a trial whose heartbeat went stale belongs to a
dead driver.

Reading: results, the dashboard, export and the identity check read a SQLite study
straight from Optuna's tables, opened read-only (one query per table: a 5,000-trial study
loads in well under a second, where Optuna's ORM takes seconds). A file that is not an
Optuna database (empty, foreign) is refused rather than having tables created in it. A
database server (PostgreSQL, MySQL) is read with the same SELECTs through SQLAlchemy, in a
transaction that is rolled back; one that cannot be reached raises DatabaseUnreachable,
naming host and port. A study kept elsewhere than `<out>/study.db` is found from its output
folder through `<out>/storage.url`, the URL without its password.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import attrs as A

HEARTBEAT_S = 5  # a live driver beats for each of its running trials this often
GRACE_S = 30  # a running trial whose last beat is older than this belongs to a dead driver


def make_storage(url: str) -> Any:
    """The storage object for a study URL: RDB with heartbeats, or None (in memory)."""
    import optuna

    if url == "memory://":
        return None
    from sqlalchemy.exc import IntegrityError, OperationalError

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}

    def open_rdb():
        with warnings.catch_warnings():  # heartbeats are marked experimental; the user need not hear of it
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)

    for attempt in range(SCHEMA_TRIES - 1):
        try:
            return open_rdb()
        except (IntegrityError, OperationalError) as err:
            # two drivers creating the same new database: both write Optuna's schema, and the
            # one that loses the race fails on its version stamp (or a table the other made);
            # the schema is complete by then, so opening it again succeeds
            if not _schema_race(err):
                raise
            time.sleep(0.2 * (attempt + 1))
    return open_rdb()


SCHEMA_TRIES = 5  # opening a new database another driver is creating at the same moment


def _schema_race(err: Exception) -> bool:
    text = str(err).lower()
    return "alembic_version" in text or "already exists" in text


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


def trial_by_number(study, number: int):
    """One stored trial (FrozenTrial), read alone."""
    storage = study._storage
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, number))


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
        driver = A.driver(t)
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
        storage.set_trial_user_attr(tid, A.FAILURE, reason)
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
            self.study.set_user_attr(f"{A.DRIVER_PREFIX}{self.driver}", time.time())

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
    beat = study.user_attrs.get(f"{A.DRIVER_PREFIX}{driver}")
    return isinstance(beat, int | float) and time.time() - beat < GRACE_S


CLAIM_SETTLE_S = 0.5  # two drivers that claim at once both see the last claim after this


def claim_study(study, driver: str) -> None:
    """Make `driver` the one driver of a deterministic study, or raise UserError naming
    the driver that runs it. Both of two drivers starting together write their claim; after
    `settle_s` both read the last one, and only its writer goes on."""
    holder = study.user_attrs.get(A.OWNER)
    if holder not in (None, driver) and driver_alive(study, holder):
        raise UserError(_owned(study, holder))
    study.set_user_attr(A.OWNER, driver)
    time.sleep(CLAIM_SETTLE_S)
    holder = study.user_attrs.get(A.OWNER)
    if holder != driver:
        raise UserError(_owned(study, holder))


def release_study(study, driver: str) -> None:
    """The driver is done with the study: another may run it at once."""
    with contextlib.suppress(Exception):
        if study.user_attrs.get(A.OWNER) == driver:
            study.set_user_attr(A.OWNER, None)


def _owned(study, holder: str) -> str:
    host, _, rest = holder.partition(":")
    return (
        f"study {study.study_name!r} is being run by another driver (host {host}, process {rest.split(':')[0]}); "
        "a study with schedule: sync runs one driver at a time, so that its decisions follow trial order; "
        "allowed: wait for it to finish (or stop it and run this again to resume), or schedule: async for several drivers"
    )


def confirm_values(study, values: dict[int, list[float]]) -> None:
    """Replace the stored objective values of finished trials (number -> values): a raced
    trial's mean over its seeds, so that Optuna's own readers (best_trials, optuna-dashboard)
    see the front skipsearch reports. Optuna has no public call for it (a finished trial is
    final to its API), so the rows are written here, and this process's cache with them."""
    if not values:
        return
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    storage = study._storage
    backend = _backend(study)
    if hasattr(backend, "scoped_session"):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(backend.scoped_session) as session:
            for number, vals in values.items():
                tid = by_number[number]._trial_id
                for row in session.query(models.TrialValueModel).filter(models.TrialValueModel.trial_id == tid).all():
                    row.value, row.value_type = models.TrialValueModel.value_to_stored_repr(float(vals[row.objective]))
    else:  # in memory: the stored FrozenTrial is the record
        for number, vals in values.items():
            backend._get_trial(by_number[number]._trial_id).values = [float(v) for v in vals]
    from optuna.storages import _CachedStorage

    cached = storage._studies.get(study._study_id) if isinstance(storage, _CachedStorage) else None
    for number, vals in values.items():
        t = cached.trials.get(number) if cached is not None else None
        if t is not None:
            t.values = [float(v) for v in vals]


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
    # sampled parameters as Optuna stores them: name -> (internal value, distribution JSON)
    params: dict[str, tuple[float, str]] = field(default_factory=dict)


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
    tables = _tables(db)
    if not tables >= OPTUNA_TABLES:
        found = ", ".join(sorted(tables)) or "none"
        raise UserError(f"{db}: an SQLite database without Optuna's tables (tables: {found}); allowed: an Optuna study database")


Source = Path | str  # an SQLite file, or the URL of a database server
POINTER = "storage.url"  # in the output folder of a study kept elsewhere than <out>/study.db: where it is


def write_pointer(out: Path, url: str) -> None:
    """Note in `out` where its study is kept, for results, the dashboard and export (which
    are given the folder); a study in `out/study.db` needs none. A server's password is
    left out (PostgreSQL clients take it from PGPASSWORD or ~/.pgpass)."""
    pointer = out / POINTER
    db = sqlite_path(url)
    if db is None and not is_server_url(url):
        return  # in memory: nothing to find later
    if db is not None and db.resolve() == (out / "study.db").resolve():
        pointer.unlink(missing_ok=True)  # back to the folder's own study.db
        return
    lines = ["# where the study of this folder is kept: skipsearch results, dashboard and export read it"]
    if db is not None:
        url = f"sqlite:///{db.resolve()}"
    else:
        from sqlalchemy.engine import URL, make_url

        u = make_url(url)
        if u.password is not None:
            lines.append("# the password is not kept here: PostgreSQL clients take it from PGPASSWORD or ~/.pgpass")
            u = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
            url = u.render_as_string(hide_password=False)
    text = "\n".join([*lines, url, ""])
    if pointer.is_file() and pointer.read_text(encoding="utf-8") == text:
        return
    tmp = pointer.with_name(POINTER + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(pointer)


def read_pointer(out: Path) -> str | None:
    """The storage URL noted in `out` by write_pointer, None when there is no note."""
    pointer = out / POINTER
    if not pointer.is_file():
        return None
    try:
        lines = [ln.strip() for ln in pointer.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{pointer}: cannot read it ({err}); allowed: the storage URL of the folder's study") from None
    urls = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(urls) != 1 or "://" not in urls[0]:
        found = f"{urls[0][:80]!r}" if len(urls) == 1 else f"{len(urls)} URLs"
        raise UserError(f"{pointer}: {found}; allowed: one line with the storage URL of the folder's study")
    return urls[0]


class DatabaseUnreachable(UserError):
    """A database server that could not be reached or refused the login (raised before
    anything is written; callers name the file or option the URL came from)."""


def is_server_url(url: str) -> bool:
    """A study URL of a database server (PostgreSQL, MySQL, ...), neither SQLite nor in memory."""
    return url != "memory://" and not url.startswith("sqlite")


def shown_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse was refused earlier
        return url


def _server_address(url) -> str:
    """host:port of a SQLAlchemy URL, the dialect's default port filled in."""
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):
        host = ",".join(host)
    port = url.port or {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name())
    if not host:
        return "the local socket" + (f" (port {port})" if port else "")
    return f"{host}:{port}" if port else host


def _driver_reason(err: BaseException) -> str:
    """The driver's own complaint, in one short line (libpq repeats host and port first)."""
    text = str(getattr(err, "orig", None) or err).strip()
    line = " ".join((text.splitlines() or [type(err).__name__])[0].split())
    line = re.sub(r"^connection to server (at|on) .*? failed: ", "", line)
    return line[:200] or type(err).__name__


class _Reader:
    """SELECTs over an Optuna database: `rows(sql, args)` with `?` marking the parameters,
    `tables()` the table names, `errors` what a failed query raises."""

    def __init__(self, rows, tables, errors: tuple[type[BaseException], ...]) -> None:
        self.rows, self.tables, self.errors = rows, tables, errors


def _where(source: Source) -> str:
    return str(source) if isinstance(source, Path) else shown_url(source)


@contextlib.contextmanager
def _reading(source: Source):
    """A _Reader over an SQLite file opened read-only, or over a database server (its
    transaction is rolled back, never committed); DatabaseUnreachable when the server
    cannot be reached or refuses the login."""
    if isinstance(source, Path):
        try:
            con = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        except sqlite3.Error as err:
            raise UserError(f"{source}: cannot read the study database ({err})") from None
        try:
            yield _Reader(
                lambda sql, args=(): con.execute(sql, args).fetchall(),
                lambda: {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")},
                (sqlite3.Error,),
            )
        finally:
            con.close()
        return
    import sqlalchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(source)
    connect_args = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10  # a host that drops packets: an answer in seconds, not never
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        try:
            con = engine.connect()
        except sqlalchemy.exc.SQLAlchemyError as err:
            raise DatabaseUnreachable(
                f"{shown_url(source)!r}: cannot connect to {_server_address(url)} ({_driver_reason(err)})"
            ) from None

        def rows(sql: str, args: tuple = ()) -> list[tuple]:
            numbers = iter(range(len(args)))
            sql = re.sub(r"\?", lambda _: f":p{next(numbers)}", sql)
            return [tuple(r) for r in con.execute(sqlalchemy.text(sql), {f"p{i}": a for i, a in enumerate(args)})]

        with con:
            try:
                yield _Reader(rows, lambda: set(sqlalchemy.inspect(con).get_table_names()), (sqlalchemy.exc.SQLAlchemyError,))
            finally:
                con.rollback()
    finally:
        engine.dispose()


def _query(source: Source, sql: str, args: tuple = ()) -> list[tuple]:
    with _reading(source) as r:
        try:
            return r.rows(sql, args)
        except r.errors as err:
            raise UserError(f"{_where(source)}: cannot read the study database ({_driver_reason(err)})") from None


def _tables(source: Source) -> set[str]:
    with _reading(source) as r:
        try:
            return r.tables()
        except r.errors as err:
            raise UserError(f"{_where(source)}: cannot read the study database ({_driver_reason(err)})") from None


def study_names(source: Source) -> list[str]:
    if not isinstance(source, Path) and "studies" not in _tables(source):
        return []  # a database server where no study was made yet
    return [r[0] for r in _query(source, "SELECT study_name FROM studies ORDER BY study_id")]


def study_attrs(source: Source, name: str) -> dict[str, Any] | None:
    """A stored study's user attributes; None when the database holds no such study."""
    if not isinstance(source, Path) and not _tables(source) >= OPTUNA_TABLES:
        return None  # a server database without Optuna's tables: Optuna creates them
    rows = _query(source, "SELECT study_id FROM studies WHERE study_name = ?", (name,))
    if not rows:
        return None
    sql = "SELECT a.key, a.value_json FROM study_user_attributes a WHERE a.study_id = ?"  # a.key: a reserved word in MySQL
    return {k: json.loads(v) for k, v in _query(source, sql, rows[0])}


def read_study(source: Source, name: str) -> StoredStudy:
    """Study `name` of an (already checked) Optuna database, read-only."""
    ((study_id,),) = _query(source, "SELECT study_id FROM studies WHERE study_name = ?", (name,))
    sql = "SELECT direction FROM study_directions WHERE study_id = ? ORDER BY objective"
    directions = [str(d).lower() for (d,) in _query(source, sql, (study_id,))]
    trials = read_trials(source, name)
    if trials is None:
        raise UserError(f"{_where(source)}: cannot read the trials of study {name!r}")
    return StoredStudy(name, directions, study_attrs(source, name) or {}, trials)


def read_trials(source: Source, name: str) -> list[TrialRecord] | None:
    """All trials straight from Optuna's tables (one query each); None when the database
    does not look like Optuna's schema."""
    with _reading(source) as r:
        try:
            (study_id,) = r.rows("SELECT study_id FROM studies WHERE study_name = ?", (name,))[0]
            sql = "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials WHERE study_id = ?"
            trials = r.rows(sql, (study_id,))
            values: dict[int, dict[int, float]] = {}
            for tid, objective, value in r.rows(
                "SELECT v.trial_id, v.objective, v.value FROM trial_values v JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                values.setdefault(tid, {})[objective] = value
            attrs: dict[int, dict[str, Any]] = {}
            for tid, key, value in r.rows(
                "SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a "
                "JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                attrs.setdefault(tid, {})[key] = json.loads(value)
            params: dict[int, dict[str, tuple[float, str]]] = {}
            for tid, pname, value, dist in r.rows(
                "SELECT p.trial_id, p.param_name, p.param_value, p.distribution_json FROM trial_params p "
                "JOIN trials t USING (trial_id) WHERE t.study_id = ?",
                (study_id,),
            ):
                params.setdefault(tid, {})[pname] = (value, dist)
        except (*r.errors, IndexError, TypeError, ValueError):
            return None
    out = []
    for tid, number, state, start, complete in trials:
        v = values.get(tid)
        start, complete = (d if d is None or isinstance(d, str) else str(d) for d in (start, complete))  # a server's datetimes
        values_ = [v[i] for i in sorted(v)] if v else None
        out.append(TrialRecord(number, str(state), values_, attrs.get(tid, {}), start, complete, params.get(tid, {})))
    return sorted(out, key=lambda t: t.number)
