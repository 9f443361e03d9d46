"""No lost update through rebase: a client's mutation moves onto the versions its own earlier mutations made.

An offline client makes each mutation against the version of the document it last had from
the server (its base), on top of its own earlier mutations not yet acknowledged. When those
land first, the later one looks stale, though nothing it did not see came in between. So an
``ApplyMutation`` whose command id is ``<client key>:<seq>`` is moved onto the document's
current version when every version after its base was made by earlier mutations of the same
client key (same principal prefix and client), one after the other. Otherwise (another
client's change, or a merge with one, lies in between) it keeps its base, and its collection's
policy merges (or rejects) it against that: a later put never deletes fields it did not see.

The processor keeps each cached document's ``Run``: the versions (after, upto] its latest
writer made one after the other. This holds whether the mutations came in one push or in
several (a retried push, an SDK's pipelined batches), in one processing round or in many.
A document loaded cold has no known run; the events after the base tell it (``run_of``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..domain.records import StoredEvent
from .models import ApplyMutation, Command

MAX_SPAN = 1000
"""The most versions a cold document's run is read back over (a push holds at most 1,000 mutations)."""


@dataclass(frozen=True, slots=True)
class Run:
    """Versions (after, upto] of a document made one after the other by one client key, the last at ``seq``."""

    author: str
    after: int
    upto: int
    seq: int


def author_of(command_id: str | None) -> tuple[str, int] | None:
    """The client key and seq of a command id ``<client key>:<seq>``, or None for any other id."""
    author, colon, seq = (command_id or "").rpartition(":")
    if not colon or not author or not seq.isdigit() or not seq.isascii():
        return None
    return author, int(seq)


def after_accepting(run: Run | None, command_id: str, before: int, upto: int) -> Run | None:
    """The document's run once the command ``command_id`` took it from version ``before`` to ``upto``."""
    made_by = author_of(command_id)
    if made_by is None:
        return None
    author, seq = made_by
    if run is not None and run.author == author and run.upto == before and seq > run.seq:
        return Run(author, run.after, upto, seq)
    return Run(author, before, upto, seq)


def rebased(cmd: Command, version: int, run: Run | None) -> Command:
    """``cmd`` moved onto ``version`` (the document's current one) when every version after its base lies in
    ``run`` and ``run`` was made by earlier mutations of ``cmd``'s own client key; else ``cmd`` as it is."""
    made_by = author_of(cmd.command_id)
    base = cmd.expected_version
    if run is None or made_by is None or base is None or not isinstance(cmd, ApplyMutation):
        return cmd
    author, seq = made_by
    if run.author == author and seq > run.seq and run.upto == version and run.after <= base < version:
        return cmd.model_copy(update={"expected_version": version})
    return cmd


def is_stale(cmd: Command, version: int) -> bool:
    """Whether ``cmd`` is a mutation made against a version older than ``version``."""
    base = cmd.expected_version
    return isinstance(cmd, ApplyMutation) and base is not None and base < version


def run_of(events: Sequence[StoredEvent], upto: int) -> Run | None:
    """The latest run within ``events`` (consecutive versions ending at ``upto``), as far back as they go."""
    if not events or events[-1].version != upto:
        return None
    made_by = author_of(events[-1].event.meta.causation_id)
    if made_by is None:
        return None
    after, seq = upto - 1, made_by[1]
    for event in reversed(events[:-1]):
        by = author_of(event.event.meta.causation_id)
        if event.version != after or by is None or by[0] != made_by[0] or by[1] > seq:
            break
        after, seq = after - 1, by[1]
    return Run(made_by[0], after, upto, made_by[1])
