"""Handlers: one per command, each mapping a command and the document's state to events.

The conflict policy of the command's collection is consulted first (G4); then the
domain decides. ``COMMAND_HANDLERS`` routes by command class.
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain import documents
from ..domain.documents import Document, DocumentEvent
from ..domain.policies import PolicyBook
from .models import Command, CreateDocument, DeleteDocument, PatchDocument, PutDocument


def create_document(cmd: CreateDocument, doc: Document) -> list[DocumentEvent]:
    return documents.create(doc, cmd.data)


def put_document(cmd: PutDocument, doc: Document) -> list[DocumentEvent]:
    return documents.put(doc, cmd.data)


def patch_document(cmd: PatchDocument, doc: Document) -> list[DocumentEvent]:
    return documents.patch(doc, cmd.data, cmd.unset)


def delete_document(cmd: DeleteDocument, doc: Document) -> list[DocumentEvent]:
    return documents.delete(doc)


Handler = Callable[[Command, Document], list[DocumentEvent]]


def handle(cmd: Command, doc: Document, policies: PolicyBook) -> list[DocumentEvent]:
    """The events ``cmd`` produces on ``doc``; raises DomainError when it cannot apply."""
    policies.for_collection(cmd.collection).check(doc, cmd.expected_version)
    handler = COMMAND_HANDLERS[type(cmd)]
    return handler(cmd, doc)


COMMAND_HANDLERS: dict[type[Command], Handler] = {
    CreateDocument: create_document,  # type: ignore[dict-item]
    PutDocument: put_document,  # type: ignore[dict-item]
    PatchDocument: patch_document,  # type: ignore[dict-item]
    DeleteDocument: delete_document,  # type: ignore[dict-item]
}
