"""Reading the user's text files (study and space YAML, spec JSON) safely.

Every problem becomes one UserError naming the file: missing, a folder, unreadable,
not UTF-8 text, too large, malformed. YAML is read with a loader that refuses
duplicate keys (PyYAML silently keeps the last one) and documents whose aliases expand
beyond a bound (an alias bomb becomes gigabytes as soon as anything walks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError

MAX_TEXT_BYTES = 1 << 20  # study, space and spec files are a few KiB; 1 MiB is generous
MAX_YAML_NODES = 100_000  # values after alias expansion; real files have a few hundred


def read_text(path: str | Path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The text of a small UTF-8 file; UserError naming the file otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise UserError(f"{path}: is a folder; allowed: a {what} file")
        if size > max_bytes:
            raise UserError(f"{path}: {size:,} bytes is too large for a {what} file; allowed: at most {max_bytes:,} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read the {what} file ({err.strerror or err})") from None
    except ValueError:  # a NUL character: no file can have this name
        raise UserError(f"{str(path)!r}: not a file name; allowed: a path without NUL characters") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a UTF-8 text file (byte {err.start}); allowed: a {what} file in UTF-8") from None


def _loader():
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that refuses duplicate keys and alias bombs: every node's size with
        its aliases expanded is tracked, and a document beyond MAX_YAML_NODES is refused."""

        def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
            node = super().compose_node(parent, index)
            sizes = self.__dict__.setdefault("_sizes", {})
            if id(node) not in sizes:
                children = node.value if isinstance(node, yaml.SequenceNode) else ()
                if isinstance(node, yaml.MappingNode):
                    children = [n for pair in node.value for n in pair]
                sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[id(node)] > MAX_YAML_NODES:
                raise yaml.YAMLError(f"more than {MAX_YAML_NODES:,} values once aliases are expanded (refused: an alias bomb?)")
            return node

        def construct_mapping(self, node, deep=False):  # noqa: ANN001
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise yaml.YAMLError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
                seen.add(key) if isinstance(key, str | int | float | bool) else None
            return super().construct_mapping(node, deep=deep)

    return BoundedLoader


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse a YAML file; a missing, oversized or malformed one is a UserError naming it."""
    import yaml

    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: malformed YAML ({first})") from None
    except RecursionError:
        raise UserError(f"{path}: malformed YAML (nested too deeply)") from None
