"""Exceptions raised at the project's boundaries."""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """An invalid value in an architecture spec.

    Carries the dotted field name, the offending value and what is allowed, so the
    command line can print one precise line and tests can check each part.
    """

    def __init__(self, field: str, value: Any, allowed: str, why: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.why = why
        reason = f" ({why})" if why else ""
        super().__init__(f"field '{field}': invalid value {value!r}{reason}; allowed: {allowed}")


class UserError(Exception):
    """Bad input from a user (a file, a name, an option): reported as one line, exit 2.

    `field` names the argument at fault when it is an argument of a library call (e.g.
    "trial"); the command line shows it as its own option (--trial)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message, self.field = message, field
        super().__init__(f"{field}: {message}" if field else message)


class TrainingError(RuntimeError):
    """Training went wrong inside a trial (a loss that is no longer finite, ...); a study
    records the reason and goes on."""
