"""Tasks: a registry of data + loss + metrics (`shapes`, `shapes3d`, `photos-denoise`, `folder-seg`,
`folder-restore`, `nnunet-raw`)."""

from __future__ import annotations

from typing import Any

from ..errors import SpecError, UserError
from .base import TASKS, Task
from . import folders, nnunet_raw, photos, shapes, shapes3d  # noqa: F401 - registration side effect


def make_task(name: str, **options: Any) -> Task:
    """A task by registered name; options go to its constructor (e.g. data=DIR, sigma=50)."""
    try:
        cls = TASKS.get(name)
    except SpecError as err:
        raise UserError(f"unknown task {name!r}; allowed: {err.allowed}{'; ' + err.why if err.why else ''}") from None
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    for key in options:
        if key not in accepted:
            raise UserError(f"task {name!r}: unknown option {key!r}; allowed: {', '.join(sorted(accepted))}")
    return cls(**options)


def list_tasks() -> list[str]:
    return TASKS.names()


__all__ = ["TASKS", "Task", "list_tasks", "make_task"]
