"""The sync protocol behind ``/sync``: push a batch of mutations, pull the change feed after a cursor.

Push: each mutation is checked at the edge before anything is stored (the command model's
value check, then the limits: size, clock skew and the clock's node, CRDT replicas) and
becomes an ``ApplyMutation`` command with the id ``<client>:<seq>`` (its idempotency key: a
retried push is answered from the log, never applied twice). A mutation without a clock is
stamped with the server's time on arrival, so under lww it competes like any other write.
The commands of a push go to the bus in one send, in seq order (so each document's in its
order), and their results are awaited together. The processor moves a later mutation onto
the versions the client's earlier ones made, one after the other (``commands.rebasing``),
never over another client's change or a merge with one. Each mutation gets its own result
(``push_results``): ``applied``, ``merged`` (a ConflictResolved was recorded) or
``rejected`` (with the code and the reason).

Pull: the ``changes`` read model of each subscribed collection after an opaque cursor
(``cursors``: the position reached per collection, and the build of the read model they count
in), a page at a time. A rebuild of ``changes`` numbers the positions afresh, so a cursor of
an older build starts over from the first change, and the page says ``"reset": true``;
clients apply a change only if it is newer than their copy, so starting over is safe.
Waiting for a page (long-poll, stream) is ``live.py``'s: on the event loop, woken by the
read models' commit notices, never by reading again and again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...commands.models import MAX_ID, MAX_VERSION, ApplyMutation, describe_validation_error
from ...commands.results import CommandResult
from ...domain.documents import ConflictResolved, Document
from ...domain.errors import InvalidInput
from ...domain.hlc import PATTERN as HLC_PATTERN
from ...domain.hlc import HybridClock
from ...domain.limits import Limits, check_change
from ...domain.names import NAME, checked_name, qualified, unqualified
from ...projections.queries import ReadModelQueries, checked_limit
from .auth import ANONYMOUS_ADMIN, ID_PREFIX_LENGTH, Principal
from .backbone import Backbone
from .cursors import Cursor, decode_cursor, encode_cursor
from .push_results import LatestStates, Pushed, answered, refused, with_states

MAX_WAIT_S = 60.0
MAX_SEQ = 2**63 - 1
MAX_CLIENT = MAX_ID - ID_PREFIX_LENGTH - 1 - len(str(MAX_SEQ))
"""The longest client name: its command ids ``<principal prefix><client>:<seq>`` must fit in MAX_ID characters."""
STATE_BUDGET_FACTOR = 4
"""The states of one push's results total at most this many times SYNC_MAX_BODY_BYTES."""


class Mutation(BaseModel):
    """One change made by a client, as it travels in a push."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, le=MAX_SEQ, description="the client's sequence number; with the client, the idempotency key")
    collection: str = Field(max_length=200, pattern=NAME)
    id: str = Field(max_length=200, pattern=NAME)
    op: Literal["create", "put", "patch", "delete"] = "patch"
    base_version: int | None = Field(
        default=None, ge=0, le=MAX_VERSION, description="the version the change was made against"
    )
    clock: str | None = Field(default=None, pattern=HLC_PATTERN, description="hybrid logical timestamp")
    data: dict[str, Any] = Field(default_factory=dict, description="fields to set (put: the whole document)")
    unset: list[str] = Field(default_factory=list)
    crdt: dict[str, Any] = Field(default_factory=dict, description="deltas of CRDT-typed fields")

    def command(self, client: str, clock: HybridClock, who: Principal = ANONYMOUS_ADMIN) -> ApplyMutation:
        """The command of this mutation by ``client`` of ``who`` (stamped by ``clock`` if it has no clock; in
        the principal's tenant and id namespace), or InvalidInput."""
        try:
            return ApplyMutation(
                command_id=f"{who.id_prefix}{client}:{self.seq}",
                client_id=client,
                actor=who.subject if who.tenant else client,
                tenant=who.tenant or None,
                collection=qualified(who.tenant, self.collection),
                id=self.id,
                expected_version=self.base_version,
                clock=self.clock or str(clock.now()),
                **self.model_dump(include={"op", "data", "unset", "crdt"}),
            )
        except ValidationError as e:
            raise InvalidInput(describe_validation_error("mutation", e)) from e


@dataclass(slots=True)
class Batch:
    """The mutations of one push that became commands, in seq order, and their results."""

    commands: list[ApplyMutation] = field(default_factory=list)
    results: dict[str, CommandResult] = field(default_factory=dict)


def parse_mutation(raw: Any) -> Mutation:
    """A mutation from JSON, or InvalidInput saying what is wrong with it."""
    try:
        return Mutation.model_validate(raw)
    except ValidationError as e:
        raise InvalidInput(describe_validation_error("mutation", e)) from e


def checked_client(client: str) -> str:
    """``client`` if it can name a pushing client, else InvalidInput naming the limit."""
    checked_name(client, "client")
    if len(client) > MAX_CLIENT:
        raise InvalidInput(
            f"client {client[:40]!r}... is {len(client)} characters; the limit is {MAX_CLIENT} "
            f"(its command ids '<client>:<seq>' must fit in {MAX_ID})"
        )
    return client


def admitted(
    raw: Any, client: str, clock: HybridClock, limits: Limits, who: Principal
) -> ApplyMutation | InvalidInput:
    """The command of one pushed mutation, or why it is refused before anything is stored."""
    try:
        command = parse_mutation(raw).command(client, clock, who)
        check_change(command.data, command.crdt, command.clock, client, limits)
    except InvalidInput as e:
        return e
    return command


class SyncService:
    """Push and pull for offline-first clients, over one backbone and its read models."""

    def __init__(self, backbone: Backbone, queries: ReadModelQueries) -> None:
        self.backbone, self.queries = backbone, queries
        self._states: LatestStates | None = None

    def push(
        self, client: str, mutations: Sequence[Any], timeout_s: float | None = None, who: Principal = ANONYMOUS_ADMIN
    ) -> list[dict[str, Any]]:
        """One result per mutation of ``client`` of ``who``, in the order given."""
        checked_client(client)
        limits = self.backbone.limits()
        clock = HybridClock(client, now_ms=limits.now_ms)
        items = [admitted(raw, client, clock, limits, who) for raw in mutations]
        batch = Batch(sorted((c for c in items if isinstance(c, ApplyMutation)), key=seq_of))
        self._submit(batch, timeout_s or self.backbone.settings.result_timeout_s)
        return [p.as_dict() | shown_id(p, who) for p in self._results(mutations, items, batch)]

    def _submit(self, batch: Batch, timeout_s: float) -> None:
        """Send every command of ``batch`` at once and await their results together."""
        if not batch.commands:
            return
        self.backbone.bus.send(batch.commands)
        batch.results.update(self.backbone.bus.wait_results([c.command_id for c in batch.commands], timeout_s))

    def _results(self, raws: Sequence[Any], items: list[ApplyMutation | InvalidInput], batch: Batch) -> list[Pushed]:
        """Each mutation's result; the last decided one of each document with its state."""
        merged = self._merged(batch)
        pushed = [
            refused(raw, item)
            if isinstance(item, InvalidInput)
            else answered(seq_of(item), item.command_id, batch.results.get(item.command_id), item.command_id in merged)
            for raw, item in zip(raws, items, strict=True)
        ]
        aggregate_ids = [None if isinstance(item, InvalidInput) else item.aggregate_id for item in items]
        budget = STATE_BUDGET_FACTOR * self.backbone.settings.max_body_bytes
        with_states(pushed, aggregate_ids, self._documents, budget)
        return pushed

    def _merged(self, batch: Batch) -> set[str]:
        """The accepted commands of ``batch`` that recorded a ConflictResolved."""
        keys = [(r.aggregate_id, cid) for cid, r in batch.results.items() if r.status == "accepted"]
        found = self.backbone.log.find_commands(keys) if keys else {}
        return {cid for cid, stored in found.items() if any(s.event.type == ConflictResolved.type for s in stored)}

    def _documents(self, aggregate_ids: Collection[str]) -> dict[str, Document]:
        """The current state of each document, from its latest snapshot plus the events after it."""
        if self._states is None:
            self._states = LatestStates(self.backbone.snapshots(), self.backbone.log)
        return self._states(aggregate_ids)

    def pull(
        self, cursor: str | None, collections: Sequence[str], limit: int = 500, tenant: str = ""
    ) -> dict[str, Any]:
        """The next page of changes of ``tenant``'s ``collections`` after ``cursor``, and the cursor after it."""
        given, subscribed = subscription(cursor, collections, tenant)
        checked_limit(limit)
        while True:  # read the page within one build of the read model (a rebuild may swap one in meanwhile)
            generation = self.queries.generation("changes")
            reset = given.generation is not None and given.generation != generation
            positions = {} if reset else dict(given.positions)
            changes, more = self._page(subscribed, positions, limit)
            if self.queries.generation("changes") == generation:
                cursor_after = encode_cursor(positions, generation)
                return {"changes": changes, "cursor": cursor_after, "more": more, "reset": reset}

    def _page(self, subscribed: list[str], positions: dict[str, int], limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The changes after ``positions`` (moved past them) and whether there are more."""
        changes: list[dict[str, Any]] = []
        more = False
        for collection in subscribed:
            room = limit - len(changes)
            if room <= 0:
                more = True
                break
            rows = self.queries.changes(collection, positions.get(collection, 0), room)
            changes.extend(change_of(unqualified(collection), row) for row in rows)
            positions[collection] = rows[-1]["position"] if rows else positions.get(collection, 0)
            more = more or len(rows) == room
        return changes, more


def subscription(cursor: str | None, collections: Sequence[str], tenant: str = "") -> tuple[Cursor, list[str]]:
    """The decoded ``cursor`` and the feeds a pull of ``tenant`` reads, tenant-qualified: ``collections``, else
    the cursor's own (another tenant's positions are ignored); InvalidInput if none or malformed."""
    given = decode_cursor(cursor)
    mine = {c for c in given.positions if qualified(tenant, unqualified(c)) == c}
    subscribed = sorted({qualified(tenant, checked_name(c, "collection")) for c in collections} or mine)
    if not subscribed:
        raise InvalidInput("subscribe to at least one collection: collections=a,b")
    return given, subscribed


def shown_id(pushed: Pushed, who: Principal) -> dict[str, Any]:
    """The command id as its client knows it, ``<client>:<seq>`` (the principal's prefix is the server's)."""
    return {"command_id": pushed.command_id.removeprefix(who.id_prefix)} if pushed.command_id else {}


def seq_of(command: ApplyMutation) -> int:
    """The client's sequence number of a pushed mutation's command (``<client>:<seq>``)."""
    return int(command.command_id.rpartition(":")[2])


def change_of(collection: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row of the ``changes`` read model, as a pull returns it."""
    keys = ("position", "id", "version", "op", "data", "unset", "causation_id")
    return {"collection": collection} | {k: row[k] for k in keys}
