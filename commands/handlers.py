"""Handlers: one per command, each mapping a command and the document's state to events.

First the second line behind the edge's checks: the change's values, clocks, CRDT
replicas and steps, and size, within the book's limits. Then the conflict policy of the
command's collection is consulted (G4) and the domain decides; the document a decision
leaves must be within the size limit, unless it shrank. ``COMMAND_HANDLERS`` routes by
command class.
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain import documents
from ..domain.documents import Document, DocumentEvent, fold
from ..domain.errors import InvalidInput, TooLarge
from ..domain.limits import check_change, check_steps
from ..domain.mutations import BaseLoader, Change, Op, no_base, plain
from ..domain.policies import PolicyBook
from ..domain.values import json_size, value_problem
from .models import ApplyMutation, Command, CreateDocument, DeleteDocument, PatchDocument, PutDocument


def create_document(cmd: CreateDocument, doc: Document) -> list[DocumentEvent]:
    return documents.create(doc, cmd.data)


def put_document(cmd: PutDocument, doc: Document) -> list[DocumentEvent]:
    return documents.put(doc, cmd.data)


def patch_document(cmd: PatchDocument, doc: Document) -> list[DocumentEvent]:
    return documents.patch(doc, cmd.data, cmd.unset)


def delete_document(cmd: DeleteDocument, doc: Document) -> list[DocumentEvent]:
    return documents.delete(doc)


def apply_mutation(cmd: ApplyMutation, doc: Document) -> list[DocumentEvent]:
    return plain(change_of(cmd), doc)


def change_of(cmd: Command) -> Change:
    """The change ``cmd`` asks for, as conflict policies see it."""
    data = dict(getattr(cmd, "data", {}))
    unset = tuple(getattr(cmd, "unset", ()))
    common = {"base_version": cmd.expected_version, "client": cmd.client_id, "tag": cmd.command_id}
    if isinstance(cmd, ApplyMutation):
        return Change(cmd.op, data, unset, clock=cmd.clock, crdt=dict(cmd.crdt), **common)  # type: ignore[arg-type]
    return Change(CHANGE_OPS[type(cmd)], data, unset, **common)  # type: ignore[arg-type]


Handler = Callable[[Command, Document], list[DocumentEvent]]


def handle(cmd: Command, doc: Document, policies: PolicyBook, base: BaseLoader = no_base) -> list[DocumentEvent]:
    """The events ``cmd`` produces on ``doc``; raises DomainError when it cannot apply, InvalidInput
    (TooLarge, ClockSkew) when it breaks a limit.

    A policy that resolves conflicts decides every change of its collection (``base``
    gives it older versions of the document); otherwise the policy checks and the
    command's handler decides.
    """
    change, limits = change_of(cmd), policies.limits
    if problem := value_problem(change.set, "data") or value_problem(change.crdt, "crdt"):
        raise InvalidInput(problem)
    check_change(change.set, change.crdt, change.clock, change.client, limits)
    check_steps(change.crdt, doc, limits)
    events = decide(cmd, change, doc, policies, base)
    size = json_size(fold(doc, events).data)
    if size > limits.max_document_bytes and size > json_size(doc.data):  # a document that shrinks may pass
        raise TooLarge(
            f"document {cmd.aggregate_id[:120]} would take {size:,} bytes as JSON; "
            f"the limit is {limits.max_document_bytes:,} (SYNC_MAX_DOCUMENT_BYTES)"
        )
    return events


def decide(cmd: Command, change: Change, doc: Document, policies: PolicyBook, base: BaseLoader) -> list[DocumentEvent]:
    """The events of ``cmd`` as its collection's policy and the command's handler decide them."""
    policy = policies.for_collection(cmd.collection)
    if policy.resolves:
        return policy.decide(change, doc, base)
    policy.check(doc, cmd.expected_version)
    handler = COMMAND_HANDLERS[type(cmd)]
    return handler(cmd, doc)


COMMAND_HANDLERS: dict[type[Command], Handler] = {
    CreateDocument: create_document,  # type: ignore[dict-item]
    PutDocument: put_document,  # type: ignore[dict-item]
    PatchDocument: patch_document,  # type: ignore[dict-item]
    DeleteDocument: delete_document,  # type: ignore[dict-item]
    ApplyMutation: apply_mutation,  # type: ignore[dict-item]
}
CHANGE_OPS: dict[type[Command], Op] = {
    CreateDocument: "create",
    PutDocument: "put",
    PatchDocument: "patch",
    DeleteDocument: "delete",
}
