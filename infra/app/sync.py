"""The sync protocol behind ``/sync``: push a batch of mutations, pull the change feed after a cursor.

Push: each mutation becomes an ``ApplyMutation`` command with the id ``<client>:<seq>``
(its idempotency key: a retried push is answered from the log, never applied twice).
Mutations of one document go in waves, in seq order; a later one is rebased on the
version an earlier one of the same push landed at, since the client made it on top.
Each mutation gets its own result: ``applied``, ``merged`` (a ConflictResolved was
recorded) or ``rejected`` (with the code, the reason and the server's state).

Pull: the ``changes`` read model of each subscribed collection after an opaque cursor
(base64 of the position reached per collection, and the build of the read model they count
in), a page at a time. A rebuild of ``changes`` numbers the positions afresh, so a cursor of
an older build starts over from the first change, and the page says ``"reset": true``;
clients apply a change only if it is newer than their copy, so starting over is safe.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...commands.models import ApplyMutation, describe_validation_error
from ...commands.results import CommandResult
from ...domain.documents import ConflictResolved, Document, fold, split_aggregate_id
from ...domain.errors import InvalidInput
from ...domain.hlc import PATTERN as HLC_PATTERN
from ...domain.names import NAME, checked_name
from ...domain.records import StoredEvent
from ...projections.queries import ReadModelQueries, checked_limit
from ..common.backoff import poll
from .backbone import Backbone

CURSOR_VERSION = 1
Histories = dict[str, list[StoredEvent]]
MAX_WAIT_S = 60.0


class Mutation(BaseModel):
    """One change made by a client, as it travels in a push."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, description="the client's sequence number: with the client id, the idempotency key")
    collection: str = Field(pattern=NAME)
    id: str = Field(pattern=NAME)
    op: Literal["create", "put", "patch", "delete"] = "patch"
    base_version: int | None = Field(default=None, ge=0, description="the version the change was made against")
    clock: str | None = Field(default=None, pattern=HLC_PATTERN, description="hybrid logical timestamp")
    data: dict[str, Any] = Field(default_factory=dict, description="fields to set (put: the whole document)")
    unset: list[str] = Field(default_factory=list)
    crdt: dict[str, Any] = Field(default_factory=dict, description="deltas of CRDT-typed fields")

    def command(self, client: str) -> ApplyMutation:
        return ApplyMutation(
            command_id=f"{client}:{self.seq}",
            client_id=client,
            actor=client,
            collection=self.collection,
            id=self.id,
            expected_version=self.base_version,
            **self.model_dump(include={"op", "clock", "data", "unset", "crdt"}),
        )


@dataclass(slots=True)
class Pushed:
    """The result of one mutation of a push."""

    seq: int | None
    status: str
    command_id: str | None = None
    version: int = 0
    code: str | None = None
    reason: str | None = None
    retryable: bool = False
    state: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Batch:
    """The mutations of one push that became commands, by document, and their results."""

    commands: dict[str, list[ApplyMutation]] = field(default_factory=dict)
    results: dict[str, CommandResult] = field(default_factory=dict)


def parse_mutation(raw: Any) -> Mutation:
    """A mutation from JSON, or InvalidInput saying what is wrong with it."""
    try:
        return Mutation.model_validate(raw)
    except ValidationError as e:
        raise InvalidInput(describe_validation_error("mutation", e)) from e


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client's pull stands: the position reached per collection, in build ``generation`` of ``changes``."""

    positions: dict[str, int] = field(default_factory=dict)
    generation: int | None = None
    """None: a cursor from before generations were recorded, or no cursor."""


def encode_cursor(positions: dict[str, int], generation: int) -> str:
    raw = {"v": CURSOR_VERSION, "g": generation, "p": dict(sorted(positions.items()))}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Cursor:
    """The positions and generation in an opaque cursor (empty for none), or InvalidInput."""
    if not cursor:
        return Cursor()
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        positions, generation = (raw["p"], raw.get("g")) if raw.get("v") == CURSOR_VERSION else (None, None)
    except (ValueError, TypeError, AttributeError, KeyError, binascii.Error):
        positions, generation = None, None
    if (
        not isinstance(positions, dict)
        or not all(isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in positions.items())
        or not (generation is None or isinstance(generation, int))
    ):
        raise InvalidInput("cursor is malformed: pass back the 'cursor' of a previous pull, or none to start")
    return Cursor(positions, generation)


class SyncService:
    """Push and pull for offline-first clients, over one backbone and its read models."""

    def __init__(self, backbone: Backbone, queries: ReadModelQueries) -> None:
        self.backbone, self.queries = backbone, queries

    def push(self, client: str, mutations: Sequence[Any], timeout_s: float | None = None) -> list[dict[str, Any]]:
        """One result per mutation, in the order given."""
        checked_name(client, "client")
        parsed: list[Mutation | InvalidInput] = []
        for raw in mutations:
            try:
                parsed.append(parse_mutation(raw))
            except InvalidInput as e:
                parsed.append(e)
        batch = Batch()
        for item in sorted((m for m in parsed if isinstance(m, Mutation)), key=lambda m: m.seq):
            command = item.command(client)
            batch.commands.setdefault(command.aggregate_id, []).append(command)
        self._submit_in_waves(batch, timeout_s or self.backbone.settings.result_timeout_s)
        histories = self._histories(list(batch.commands))
        return [
            self._result_of(client, raw, item, batch, histories).as_dict()
            for raw, item in zip(mutations, parsed, strict=True)
        ]

    def _submit_in_waves(self, batch: Batch, timeout_s: float) -> None:
        queues = {agg: list(cmds) for agg, cmds in batch.commands.items()}
        deadline = time.monotonic() + timeout_s
        while queues and time.monotonic() < deadline:
            wave = [cmds.pop(0) for cmds in queues.values()]
            self.backbone.bus.send(wave)
            got = self.backbone.bus.wait_results([c.command_id for c in wave], max(0.0, deadline - time.monotonic()))
            batch.results.update(got)
            for cmd in wave:
                queues[cmd.aggregate_id] = rebased(queues[cmd.aggregate_id], got.get(cmd.command_id))
            queues = {agg: cmds for agg, cmds in queues.items() if cmds}

    def _histories(self, aggregate_ids: list[str]) -> Histories:
        return self.backbone.log.read_aggregates(aggregate_ids) if aggregate_ids else {}

    def _result_of(
        self,
        client: str,
        raw: Any,
        item: Mutation | InvalidInput,
        batch: Batch,
        histories: dict[str, list[StoredEvent]],
    ) -> Pushed:
        if isinstance(item, InvalidInput):
            seq = raw.get("seq") if isinstance(raw, dict) and isinstance(raw.get("seq"), int) else None
            return Pushed(seq, "rejected", code="invalid", reason=str(item))
        command_id = f"{client}:{item.seq}"
        result = batch.results.get(command_id)
        stored = histories.get(f"{item.collection}/{item.id}", [])
        if result is None:
            reason = "no result in time (is a processor running?); push it again: it will not apply twice"
            return Pushed(item.seq, "rejected", command_id, code="timeout", reason=reason, retryable=True)
        if result.status != "accepted":
            state = state_at(self.backbone, stored, None)
            return Pushed(item.seq, "rejected", command_id, state["version"], result.code, result.reason, state=state)
        merged = any(s.event.type == ConflictResolved.type for s in stored if s.event.meta.causation_id == command_id)
        state = state_at(self.backbone, stored, result.version)
        return Pushed(item.seq, "merged" if merged else "applied", command_id, result.version, state=state)

    def pull(self, cursor: str | None, collections: Sequence[str], limit: int = 500) -> dict[str, Any]:
        """The next page of changes of ``collections`` after ``cursor``, and the cursor after it."""
        given = decode_cursor(cursor)
        subscribed = sorted(set(collections) or set(given.positions))
        if not subscribed:
            raise InvalidInput("subscribe to at least one collection: collections=a,b")
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
            rows = self.queries.changes(checked_name(collection, "collection"), positions.get(collection, 0), room)
            changes.extend(change_of(collection, row) for row in rows)
            positions[collection] = rows[-1]["position"] if rows else positions.get(collection, 0)
            more = more or len(rows) == room
        return changes, more

    def wait_pull(
        self, cursor: str | None, collections: Sequence[str], limit: int = 500, wait_s: float = 0.0
    ) -> dict[str, Any]:
        """``pull``, but waiting up to ``wait_s`` for a change when there is none yet (long-poll)."""
        last: dict[str, Any] = {}

        def changed() -> bool:
            last.update(self.pull(cursor, collections, limit))
            return bool(last["changes"] or last["reset"])

        poll(changed, min(wait_s, MAX_WAIT_S), first=0.02, cap=0.5)
        return last


def rebased(queue: list[ApplyMutation], result: CommandResult | None) -> list[ApplyMutation]:
    """The document's next mutation moved onto the version the previous one landed at."""
    if not queue or result is None or result.status != "accepted":
        return queue
    head = queue[0]
    if head.expected_version is not None and head.expected_version < result.version:
        head = head.model_copy(update={"expected_version": result.version})
    return [head, *queue[1:]]


def state_at(backbone: Backbone, stored: list[StoredEvent], version: int | None) -> dict[str, Any]:
    """The document folded from ``stored`` up to ``version`` (all when None), as the client sees it."""
    if not stored:
        return {"version": 0, "data": {}, "deleted": False}
    upto = [s for s in stored if version is None or s.version <= version]
    doc = fold(Document(*split_aggregate_id(stored[0].aggregate_id)), map(backbone.codec.decode_event, upto))
    return {"version": doc.version, "data": doc.data, "deleted": doc.deleted}


def change_of(collection: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row of the ``changes`` read model, as a pull returns it."""
    keys = ("position", "id", "version", "op", "data", "unset", "causation_id")
    return {"collection": collection} | {k: row[k] for k in keys}
