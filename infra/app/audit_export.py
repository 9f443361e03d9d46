"""The audit export: every event (or one aggregate's) in a time window, as JSON lines or CSV.

Rows come from ``ReplayService.events`` in log order (partition by partition); each row
says who changed what, through which command and when, and the change itself. An event
that cannot be read is exported with its ``error`` and an empty change; the export goes on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...domain.errors import InvalidInput
from ..common.text import spreadsheet_safe
from .replay import HistoryEntry

FORMATS = ("jsonl", "csv")
COLUMNS = (
    "aggregate_id",
    "version",
    "type",
    "schema_version",
    "recorded_at",
    "occurred_at",
    "actor",
    "command_id",
    "correlation_id",
    "client_id",
    "tenant",
    "partition",
    "offset",
    "change",
    "error",
)


@dataclass(frozen=True, slots=True)
class Exported:
    """How many rows an export wrote, and how many of them hold an unreadable event."""

    rows: int
    unreadable: int


def export(entries: Iterable[HistoryEntry], out: Path, fmt: str = "jsonl") -> Exported:
    """Write ``entries`` to ``out`` in ``fmt`` (jsonl or csv)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown audit format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    try:
        with out.open("w", encoding="utf-8", newline="") as f:
            return write_csv(entries, f) if fmt == "csv" else write_jsonl(entries, f)
    except OSError as e:
        raise InvalidInput(f"cannot write the audit export to {str(out)!r}: {e.strerror or e}") from e


def write_jsonl(entries: Iterable[HistoryEntry], f: Any) -> Exported:
    rows = unreadable = 0
    for entry in entries:
        f.write(json.dumps(entry.as_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
        rows, unreadable = rows + 1, unreadable + (entry.error is not None)
    return Exported(rows, unreadable)


def write_csv(entries: Iterable[HistoryEntry], f: Any) -> Exported:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    rows = unreadable = 0
    for entry in entries:
        row = entry.as_dict()
        row["change"] = "" if row["change"] is None else json.dumps(row["change"], ensure_ascii=False)
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        rows, unreadable = rows + 1, unreadable + (entry.error is not None)
    return Exported(rows, unreadable)
