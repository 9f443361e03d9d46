"""What the processor answers for each command, and what it dead-letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..domain.records import Position, StoredEvent

Status = Literal["accepted", "rejected"]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of one command: accepted with its event positions, or rejected with a reason."""

    command_id: str
    status: Status
    aggregate_id: str
    version: int
    reason: str | None = None
    code: str | None = None
    positions: tuple[Position, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view, as printed by the CLI and returned over HTTP."""
        return {
            "command_id": self.command_id,
            "status": self.status,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "reason": self.reason,
            "code": self.code,
            "positions": [{"partition": p.partition, "offset": p.offset} for p in self.positions],
        }


def accepted(command_id: str, aggregate_id: str, stored: Sequence[StoredEvent]) -> CommandResult:
    """The result of a command whose events are ``stored``."""
    return CommandResult(
        command_id=command_id,
        status="accepted",
        aggregate_id=aggregate_id,
        version=stored[-1].version if stored else 0,
        positions=tuple(s.position for s in stored),
    )


def rejected(command_id: str, aggregate_id: str, version: int, reason: str, code: str) -> CommandResult:
    """The result of a command that produced no events."""
    return CommandResult(command_id, "rejected", aggregate_id, version, reason=reason, code=code)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A command record that could not be processed, kept with the reason."""

    partition: int
    offset: int
    key: str | None
    value: bytes
    error_type: str
    error: str
    headers: tuple[tuple[str, bytes], ...] = ()
