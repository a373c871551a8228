"""A stored study's identity, checked before the study is opened for writing.

A study keeps its objectives (names and directions), its task and its search space's
dimensions with their kinds. Opening it again with other ones would silently relabel
its values (`[dice, params]` over a `[dice, skip_memory_bytes]` study) or fail half-way
through a trial (Optuna refuses a changed parameter kind at sampling time), so a
mismatch is refused here, with both sides named, while nothing has been written.

SQLite files are inspected read-only first: a file that is not an Optuna database (a
0-byte file, a foreign database) is refused rather than having tables created in it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import UserError

OPTUNA_TABLES = {"studies", "trials", "version_info", "study_user_attributes"}


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


def stored_identity(storage: str, name: str) -> dict[str, Any] | None:
    """The identity a stored study was created with, None when there is no such study."""
    if storage == "memory://":
        return None  # a new in-memory study every time
    db = sqlite_path(storage)
    if db is not None:
        check_sqlite_file(db)
        if not db.exists():
            return None
        rows = _query(db, "SELECT study_id FROM studies WHERE study_name = ?", (name,))
        if not rows:
            return None
        attrs = dict(_query(db, "SELECT key, value_json FROM study_user_attributes WHERE study_id = ?", (rows[0][0],)))
        return _from_attrs({k: json.loads(v) for k, v in attrs.items()})
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return _from_attrs(study.user_attrs)


def _from_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    if "identity" in attrs:
        return attrs["identity"]
    config = attrs.get("config", {})  # a study written before identities were stored
    return {"objectives": config.get("objectives"), "task": config.get("task")}


def check_identity(path: Path, name: str, stored: dict[str, Any], current: dict[str, Any]) -> None:
    """UserError naming the first difference between the stored and the current identity."""
    for key, label in (("objectives", "objectives"), ("task", "task"), ("space", "search space dimensions")):
        if key not in stored or stored[key] is None:
            continue  # older studies did not record it
        if _norm(stored[key]) != _norm(current[key]):
            raise UserError(
                f"{path}: {key}: the stored study {name!r} has {label} {_show(key, stored[key])}, this file gives "
                f"{_show(key, current[key])}; allowed: the stored ones, or a new study name or out folder"
            )


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _show(key: str, value: Any) -> str:
    if key == "objectives":
        return "[" + ", ".join(f"{n} ({d})" for n, d in value) + "]"
    if key == "space":
        return "{" + ", ".join(f"{n}: {k[0]}" + (f" {k[1]}" if len(k) > 1 else "") for n, k in value.items()) + "}"
    return repr(value)
