"""Command models: what a client may ask of a document, validated at the edge.

Every command carries a ``command_id`` (its idempotency key) and an optional
``expected_version`` (the version it was made against; 0 means "must not exist").
Every field value passes the domain's one value check (no NUL, no NaN or Infinity, no
nesting deeper than 32) and no change names the reserved ``_sync`` field: HTTP, the CLI and
the bus (the processor decodes every record through these models) all refuse the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..domain.documents import aggregate_id
from ..domain.errors import InvalidInput
from ..domain.hlc import PATTERN as HLC_PATTERN
from ..domain.names import NAME, QUALIFIED_NAME
from ..domain.values import reserved_problem, value_problem

TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
MAX_ID = 200
"""The longest command id (and actor, correlation id, client id)."""


def storable(value: Any) -> Any:
    """``value`` if it can be stored and names no reserved field, else ValueError with the one-line reason."""
    problem = value_problem(value) or reserved_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Fields = Annotated[dict[str, Any], AfterValidator(storable)]
"""Fields of a document (to set, or CRDT deltas by field), checked with the domain's value check."""
FieldNames = Annotated[list[str], AfterValidator(storable)]

MAX_VERSION = 2**63 - 1
"""The largest version a log can hold (a signed 64-bit integer, as Avro's long)."""

def new_command_id() -> str:
    """A fresh random command id."""
    return uuid.uuid4().hex


class Command(BaseModel):
    """Fields every command carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str = Field(default_factory=new_command_id, min_length=1, max_length=MAX_ID, pattern=TEXT)
    collection: str = Field(max_length=64 + 1 + 200, pattern=QUALIFIED_NAME)
    id: str = Field(max_length=200, pattern=NAME)
    expected_version: int | None = Field(default=None, ge=0, le=MAX_VERSION)
    actor: str | None = Field(default=None, max_length=200, pattern=TEXT)
    correlation_id: str | None = Field(default=None, max_length=200, pattern=TEXT)
    client_id: str | None = Field(default=None, max_length=200, pattern=TEXT)
    tenant: str | None = Field(default=None, max_length=200, pattern=TEXT)

    @property
    def aggregate_id(self) -> str:
        return aggregate_id(self.collection, self.id)

    @property
    def type(self) -> str:
        return type(self).__name__


class CreateDocument(Command):
    """Create a document with ``data``; rejected if it exists."""

    data: Fields


class PutDocument(Command):
    """Replace a document's content with ``data``, creating it when missing."""

    data: Fields


class PatchDocument(Command):
    """Set the fields in ``data`` and remove the fields in ``unset``."""

    data: Fields = Field(default_factory=dict)
    unset: FieldNames = Field(default_factory=list)


class DeleteDocument(Command):
    """Delete a document."""


class ApplyMutation(Command):
    """Apply an offline client's change under its collection's conflict policy.

    ``expected_version`` is the version the change was made against (its base); ``clock``
    its hybrid logical timestamp; ``crdt`` the deltas of CRDT-typed fields.
    """

    op: Literal["create", "put", "patch", "delete"] = "patch"
    data: Fields = Field(default_factory=dict)
    unset: FieldNames = Field(default_factory=list)
    clock: str | None = Field(default=None, pattern=HLC_PATTERN)
    crdt: Fields = Field(default_factory=dict)


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls for cls in (CreateDocument, PutDocument, PatchDocument, DeleteDocument, ApplyMutation)
}


def parse_command(type_name: str, fields: Mapping[str, Any]) -> Command:
    """Build a command of ``type_name`` from ``fields``, or raise InvalidInput saying what is wrong."""
    cls = COMMAND_TYPES.get(type_name)
    if cls is None:
        known = ", ".join(sorted(COMMAND_TYPES))
        raise InvalidInput(f"unknown command type {type_name!r}; expected one of: {known}")
    try:
        return cls.model_validate(dict(fields))
    except ValidationError as e:
        raise InvalidInput(describe_validation_error(type_name, e)) from e


def describe_validation_error(type_name: str, error: ValidationError) -> str:
    """One line per problem: ``field: message``."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg'].removeprefix('Value error, ')}"
        for err in error.errors()
    )
    return f"invalid {type_name}: {problems}"
