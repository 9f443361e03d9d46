"""Pull cursors: opaque to clients, base64 of ``{"v": 1, "g": build, "p": {collection: position}}``.

Decoding never trusts the text: anything that is not such an object, however long or
deeply nested, is InvalidInput (a 400), never a RecursionError.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from ...domain.errors import InvalidInput

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 65_536
MALFORMED = "cursor is malformed: pass back the 'cursor' of a previous pull, or none to start"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client's pull stands: the position reached per collection, in build ``generation`` of ``changes``."""

    positions: dict[str, int] = field(default_factory=dict)
    generation: int | None = None
    """None: a cursor from before generations were recorded, or no cursor."""


def encode_cursor(positions: dict[str, int], generation: int) -> str:
    """The opaque text of a cursor."""
    raw = {"v": CURSOR_VERSION, "g": generation, "p": dict(sorted(positions.items()))}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Cursor:
    """The positions and generation in an opaque cursor (empty for none), or InvalidInput."""
    if not cursor:
        return Cursor()
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidInput(f"{MALFORMED} (it is over {MAX_CURSOR_CHARS:,} characters)")
    raw = _loaded(cursor)
    if not isinstance(raw, dict) or raw.get("v") != CURSOR_VERSION:
        raise InvalidInput(MALFORMED)
    positions, generation = raw.get("p"), raw.get("g")
    if not isinstance(positions, dict) or not all(_name(k) and _count(v) for k, v in positions.items()):
        raise InvalidInput(MALFORMED)
    if not (generation is None or _count(generation)):
        raise InvalidInput(MALFORMED)
    return Cursor(positions, generation)


def _loaded(cursor: str) -> Any:
    """The JSON value in the cursor's text, or None when there is none (nesting too deep included)."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        return None


def _name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 300


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
