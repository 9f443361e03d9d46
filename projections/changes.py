"""Read-model tables and the changes a projection makes to them, folded per batch.

A projection declares its ``Table``s and its handlers return ``Change``s: ``Upsert``
(the whole row), ``MergeJson`` (set/unset keys of one JSON column, overwrite other
columns; the row must exist) and ``Append`` (a new row, numbered per group when the
table has a ``sequence``). ``compact`` folds a batch's changes so each key is written
once, which is what lets the store write a batch as one multi-row statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Table:
    """A read-model table: its columns (name, PostgreSQL type), key, indexes and optional sequence."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[str, ...] = ()
    sequence: tuple[str, str] | None = None
    """(group column, position column): Append numbers rows 1, 2, ... per group value."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def compared(self) -> tuple[str, ...]:
        """The columns that verify compares (a sequence position depends on interleaving, so not it)."""
        volatile = {self.sequence[1]} if self.sequence else set()
        return tuple(c for c in self.column_names if c not in volatile)

    def key_of(self, row: Row) -> tuple[Any, ...]:
        """The key of ``row`` in this table."""
        return tuple(row[c] for c in self.key)


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert ``row`` (every column), or overwrite the row with its key."""

    table: str
    row: Row


@dataclass(frozen=True, slots=True)
class MergeJson:
    """On the existing row with ``row``'s key: ``column = (column - unset) || set``; other columns overwritten."""

    table: str
    row: Row
    column: str
    set: Row
    unset: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Append:
    """Insert ``row`` as a new row (its sequence position, if any, is given by the store)."""

    table: str
    row: Row


Change = Upsert | MergeJson | Append


@dataclass(slots=True)
class TableBatch:
    """The compacted writes of one table: one upsert or merge per key, then appends in order."""

    table: Table
    upserts: list[Row] = field(default_factory=list)
    merges: list[MergeJson] = field(default_factory=list)
    appends: list[Row] = field(default_factory=list)


def merged_json(current: Row, set_: Row, unset: Iterable[str]) -> dict[str, Any]:
    """``current`` without the ``unset`` keys, updated with ``set_`` (what the store does in SQL)."""
    gone = set(unset)
    out = {k: v for k, v in current.items() if k not in gone}
    out.update(set_)
    return out


def fold(previous: Upsert | MergeJson | None, change: Upsert | MergeJson) -> Upsert | MergeJson:
    """One change with the effect of ``previous`` then ``change`` on the same key."""
    if previous is None or isinstance(change, Upsert):
        return change
    if isinstance(previous, Upsert):
        data = merged_json(previous.row[change.column], change.set, change.unset)
        return replace(previous, row={**previous.row, **change.row, change.column: data})
    if previous.column != change.column:
        raise ValueError(f"two merges of one {change.table} row into different columns")
    unset = tuple(dict.fromkeys((*previous.unset, *change.unset)))
    set_ = {k: v for k, v in previous.set.items() if k not in change.unset} | dict(change.set)
    return replace(change, row={**previous.row, **change.row}, set=set_, unset=unset)


def compact(changes: Sequence[Change], tables: Mapping[str, Table]) -> list[TableBatch]:
    """The changes folded per table and key, in first-touched order."""
    keyed: dict[str, dict[tuple[Any, ...], Upsert | MergeJson]] = {}
    batches: dict[str, TableBatch] = {}
    for change in changes:
        table = tables.get(change.table)
        if table is None:
            raise ValueError(f"a change to table {change.table!r}, which the projection does not declare")
        batch = batches.setdefault(table.name, TableBatch(table))
        if isinstance(change, Append):
            batch.appends.append(change.row)
            continue
        rows = keyed.setdefault(table.name, {})
        key = table.key_of(change.row)
        rows[key] = fold(rows.get(key), change)
    for name, rows in keyed.items():
        for change in rows.values():
            if isinstance(change, Upsert):
                batches[name].upserts.append(change.row)
            else:
                batches[name].merges.append(change)
    return list(batches.values())
