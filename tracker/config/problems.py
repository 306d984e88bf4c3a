"""Collect config problems as ``dotted.path: message (found: value)`` lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marshmallow import Schema, ValidationError

_MISSING = object()


class Problems(list):
    """Every problem found so far; validation goes on after each one."""

    def add(self, where: str, message: str, found: Any = _MISSING) -> None:
        """Record one problem at a dotted key path."""
        suffix = "" if found is _MISSING else f" (found: {found!r})"
        self.append(f"{where}: {message}{suffix}")

    def load(self, schema: Schema, data: Any, prefix: tuple) -> dict | None:
        """Load ``data``; on error record each message and return ``None``."""
        loaded, ok = self.load_partial(schema, data, prefix)
        return loaded if ok else None

    def load_partial(self, schema: Schema, data: Any, prefix: tuple) -> tuple[dict, bool]:
        """Load ``data``; on error record each message and return what did load."""
        try:
            return schema.load(data if data is not None else {}), True
        except ValidationError as ex:
            self.extend(_format(prefix, ex.messages, data))
            return (ex.valid_data if isinstance(ex.valid_data, dict) else {}), False


def _format(prefix: tuple, messages: Any, data: Any) -> Iterator[str]:
    """Flatten marshmallow's nested messages into ``dotted.path: message (found: v)``."""
    for key_path, message in _flatten(messages, ()):
        key_path = tuple(k for k in key_path if k != "_schema")
        found = _lookup(data, key_path)
        where = ".".join(str(p) for p in (*prefix, *key_path)) or "<root>"
        suffix = "" if found is _MISSING else f" (found: {found!r})"
        yield f"{where}: {message}{suffix}"


def _flatten(messages: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, (*path, key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield path, message
    elif isinstance(messages, list):
        for value in messages:
            yield from _flatten(value, path)
    else:
        yield path, str(messages)


def _lookup(data: Any, key_path: tuple) -> Any:
    for key in key_path:
        in_dict = isinstance(data, dict) and key in data
        in_list = isinstance(data, list) and isinstance(key, int) and key < len(data)
        if not (in_dict or in_list):
            return _MISSING
        data = data[key]
    return data
