"""JSON values as the backbone stores them: the one check that every document value passes.

PostgreSQL ``jsonb`` and ``text`` hold neither NUL nor lone surrogates, strict JSON has no
NaN or Infinity, readers choke on integers of thousands of digits, and a deeply nested
value costs recursion wherever it is read: a value that would freeze a read model, or
could not be read back, is refused before it is stored. ``value_problem`` says why in one
line, naming where (``data.a[2]``); its walk is iterative, so a value nested a million
deep is refused, never a RecursionError.

The top-level key ``_sync`` of a document is reserved for conflict-policy metadata: no
change may write or remove it, under any policy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from .errors import CommandRejected, InvalidInput, TooLarge

MAX_DEPTH = 32
"""The deepest nesting of objects and arrays in a value (the value itself counts as 1)."""
RESERVED_KEY = "_sync"
MAX_INT_BITS = 1024
"""The largest integer (in bits, about 308 digits) a value may hold: what a double can come near."""
Path = tuple[Any, ...]
"""Where a value sits, as a linked list (key, parent) built only when a problem is found."""


def value_problem(value: Any, what: str = "", max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` cannot be stored as JSON (one line, naming where: ``what`` then the path), or None."""
    stack: list[tuple[Any, Path, int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return f"{where(what, path)} nests deeper than {max_depth} levels"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(item, dict) and (problem := key_problem(key)):
                    return f"{where(what, path)} has a key that {problem}"
                stack.append((child, (key, path), depth + 1))
        elif problem := scalar_problem(item):
            return f"{where(what, path)} {problem}"
    return None


def key_problem(key: Any) -> str | None:
    """Why ``key`` cannot be an object key, or None."""
    if not isinstance(key, str):
        return f"is a {type(key).__name__}, not a string"
    return text_problem(key)


def scalar_problem(item: Any) -> str | None:
    """Why a value that is not an object or an array cannot be stored, or None."""
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, int):
        return (
            None
            if item.bit_length() <= MAX_INT_BITS
            else f"is an integer over {MAX_INT_BITS} bits, too large to read back"
        )
    if isinstance(item, float):
        return None if math.isfinite(item) else f"is {item}, which JSON cannot carry"
    if isinstance(item, str):
        return text_problem(item)
    return f"is a {type(item).__name__}, not a JSON value"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate, which UTF-8 cannot encode"
    return None


def where(what: str, path: Path) -> str:
    """``what`` followed by the keys of ``path`` (``data.a[2]``; ``the value`` for none), cut to a readable length."""
    keys: list[Any] = []
    while path:
        key, path = path
        keys.append(key)
    text = (what + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in reversed(keys))).lstrip(".")
    text = text or "the value"
    shown = json.dumps(text)[1:-1]  # control characters escaped: the reason stays one line
    return shown if len(shown) <= 80 else shown[:77] + "..."


def checked_value(value: Any, what: str = "") -> Any:
    """``value`` if it can be stored as JSON, else InvalidInput saying why in one line."""
    if problem := value_problem(value, what):
        raise InvalidInput(problem)
    return value


def json_size(value: Any) -> int:
    """The bytes of ``value`` as compact UTF-8 JSON (check it with ``value_problem`` first)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())


def checked_size(value: Any, limit: int, what: str) -> None:
    """TooLarge if ``value`` as JSON takes more than ``limit`` bytes."""
    size = json_size(value)
    if size > limit:
        raise TooLarge(f"{what} takes {size:,} bytes as JSON; the limit is {limit:,} (SYNC_MAX_DOCUMENT_BYTES)")


def reserved_problem(fields: Iterable[str]) -> str | None:
    """Why a change naming ``fields`` (to set, remove or join) may not be made, or None."""
    if RESERVED_KEY in fields:
        return f"the field {RESERVED_KEY!r} is reserved for conflict-policy metadata"
    return None


def refuse_reserved(fields: Iterable[str]) -> None:
    """CommandRejected if ``fields`` names the reserved key (the domain's own line of defence)."""
    if problem := reserved_problem(fields):
        raise CommandRejected(problem)
