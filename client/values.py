"""What a mutation may carry: strict JSON, so that the server can take it and the outbox never holds
a value that cannot be sent. NaN and Infinity (which Python's ``json`` writes, and no JSON reader
must accept) are refused at the local write with the path of the value, before the outbox sees them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from ..domain.errors import InvalidInput


def check_sendable(value: Any, where: str) -> None:
    """Raise InvalidInput naming the first part of ``value`` that strict JSON cannot carry."""
    for path, item in walk(value, where):
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{path} is {item!r}: NaN and Infinity cannot be synced (JSON has no such number)")
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidInput(f"{where} is not JSON the server can take: {str(e).splitlines()[0]}") from e


def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every value nested in ``value`` (itself included), with its path (``data.a[2].b``); no recursion."""
    stack = [(path, value)]
    while stack:
        here, item = stack.pop()
        yield here, item
        if isinstance(item, dict):
            stack.extend((f"{here}.{key}", child) for key, child in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((f"{here}[{i}]", child) for i, child in reversed(list(enumerate(item))))
