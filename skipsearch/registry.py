"""Named registries with helpful errors for unknown names."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import SpecError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from short stable names to entries (block families, skip designs, ...)."""

    def __init__(self, kind: str, field: str) -> None:
        self.kind = kind
        self.field = field  # the spec field that names an entry, used in error messages
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register `entry` under `name` and set its `name` attribute (the one
        place a name is written)."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            entry.name = name
            self._entries[name] = entry
            return entry

        return add

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._entries[n]) for n in self.names()]

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f"did you mean {close[0]!r}?" if close else ""
            raise SpecError(self.field, name, ", ".join(self.names()), hint) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_all(package: str, path: list[str], skip: tuple[str, ...] = ("base",)) -> None:
    """Import every module of a package (each registers itself): a new skip design or block
    family is one new file, with no list to extend."""
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if info.name not in skip and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
