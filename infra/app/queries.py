"""Query input as users write it (CLI, HTTP): filters and read-your-writes positions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...domain.errors import InvalidInput
from ...domain.records import Position


def parse_where(pairs: Sequence[str]) -> dict[str, Any]:
    """``field=value`` pairs as a JSON containment filter; ``a.b=1`` nests, values are JSON or else strings."""
    where: dict[str, Any] = {}
    for pair in pairs:
        field, sep, raw = pair.partition("=")
        if not sep or not field or any(not part for part in field.split(".")):
            raise InvalidInput(f"filter {pair[:60]!r} is not of the form field=value")
        if "\x00" in pair:
            raise InvalidInput("a filter cannot hold a NUL character")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, leaf = field.split(".")
        node = where
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidInput(f"filter {pair!r} conflicts with another filter on {part!r}")
            node = child
        node[leaf] = value
    return where


def parse_positions(text: str) -> list[Position]:
    """Positions written ``partition:offset,partition:offset`` (as a command result lists them)."""
    positions = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        p, sep, o = item.partition(":")
        if not sep or not p.isdigit() or not o.isdigit():
            raise InvalidInput(f"position {item!r} is not of the form partition:offset")
        positions.append(Position(int(p), int(o)))
    return positions
