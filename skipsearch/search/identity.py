"""A stored study's identity, checked before the study is opened for writing.

A study keeps its objectives (names and directions), its task and its search space's
dimensions with their kinds. Opening it again with other ones would silently relabel
its values (`[dice, params]` over a `[dice, skip_memory_bytes]` study) or fail half-way
through a trial (Optuna refuses a changed parameter kind at sampling time), so a
mismatch is refused here, with both sides named, while nothing has been written.

SQLite files are inspected read-only first (search/storage.py): a file that is not an
Optuna database (a 0-byte file, a foreign database) is refused rather than having tables
created in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import attrs as A
from .storage import check_sqlite_file, sqlite_path, study_attrs


def stored_identity(storage: str, name: str) -> dict[str, Any] | None:
    """The identity a stored study was created with, None when there is no such study."""
    if storage == "memory://":
        return None  # a new in-memory study every time
    db = sqlite_path(storage)
    if db is not None:
        check_sqlite_file(db)
        if not db.exists():
            return None
        attrs = study_attrs(db, name)
        return None if attrs is None else identity_from_attrs(attrs)
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return identity_from_attrs(study.user_attrs)


def identity_from_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    if A.IDENTITY in attrs:
        return attrs[A.IDENTITY]
    config = attrs.get(A.CONFIG, {})  # a study written before identities were stored
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
