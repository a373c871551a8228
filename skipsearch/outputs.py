"""Writing into folders the user names, without ever deleting what skipsearch did not write.

A folder skipsearch writes (a `train --out` run, an export bundle) carries a marker file.
A target that exists, is not empty and has no marker belongs to the user: it is refused.
Publishing moves each file from a finished temporary folder into place one at a time
(atomic renames), so files the user added beside ours survive a re-run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import UserError

MARKER = ".skipsearch"


def check_target(path: Path, what: str, force: bool | None = None) -> None:
    """Refuse a folder skipsearch may not write into. `force` None: an earlier output of
    skipsearch may be replaced; False: even that is refused (say --force); True: allowed."""
    path = Path(path)
    if not path.exists():
        _check_creatable(path, what)
        return
    if not path.is_dir():
        raise UserError(f"{path}: is a file; allowed: a folder for the {what} (new, or an earlier skipsearch output)")
    if force:
        return  # asked for: files of the names skipsearch writes are replaced, nothing else
    if not (path / MARKER).exists():
        if any(path.iterdir()):
            raise UserError(f"{path}: folder is not empty and was not written by skipsearch; allowed: a new or empty folder")
        return
    if force is not None:
        raise UserError(f"{path}: an earlier {what} is already there; allowed: another folder, or force to replace it")


def _check_creatable(path: Path, what: str) -> None:
    """A folder that does not exist yet can be made: its nearest existing parent is a folder
    this process may write in (checked now, not after the work that fills it)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{path}: {parent} is a file; allowed: a folder for the {what} (new, or an earlier skipsearch output)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot create it in {parent} (permission denied); allowed: a folder you may write in")


def publish(tmp: Path, final: Path, kind: str) -> None:
    """Move the finished files of `tmp` into `final` (created if missing), then drop `tmp`."""
    (tmp / MARKER).write_text(json.dumps({"kind": kind}) + "\n")
    if not final.exists():
        os.replace(tmp, final)
        return
    for item in tmp.iterdir():
        target = final / item.name
        if target.is_dir() and not target.is_symlink():
            raise UserError(f"{target}: a folder where skipsearch writes a file; allowed: move it away")
        os.replace(item, target)
    tmp.rmdir()
