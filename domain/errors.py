"""The one exception tree of syncbackbone.

Every error the backbone raises on purpose derives from ``SyncBackboneError``;
adapters translate driver errors into these (``raise LogUnavailable(...) from e``)::

    SyncBackboneError
    ├── DomainError                 a command cannot be applied to the aggregate
    │   ├── CommandRejected         a business rule refuses it (e.g. patch of a missing document)
    │   └── VersionConflict         expected_version differs from the aggregate's (carries current)
    ├── InvalidInput                input that is malformed: bad JSON, failed validation, unknown type
    │   ├── UnknownSchema           a record whose writer schema is not in schemas/
    │   ├── TooLarge                input over a size limit (HTTP 413)
    │   └── ClockSkew               a clock too far ahead of the server's time
    ├── LogError                    the event log or the bus refused or failed an operation
    │   ├── ConcurrencyConflict     an append found an (aggregate, version) already taken
    │   ├── WriterFenced            this writer lost ownership of the partition (stale owner)
    │   └── LogUnavailable          the broker or the database cannot be reached (transient)
    ├── ConfigurationError          settings that cannot work, named with what to change
    ├── Unauthenticated             no credentials, or credentials that cannot be verified (HTTP 401)
    ├── Forbidden                   a verified caller that may not do this (HTTP 403)
    ├── RateLimited                 a caller over its rate or stream limit (HTTP 429; ``retry_after_s``)
    └── ResultTimeout               no command result arrived in time
"""

from __future__ import annotations


class SyncBackboneError(Exception):
    """Root of every error syncbackbone raises on purpose."""


class DomainError(SyncBackboneError):
    """A command cannot be applied to the aggregate's current state."""


class CommandRejected(DomainError):
    """A business rule refuses the command."""


class VersionConflict(DomainError):
    """The command's expected_version is not the aggregate's current version."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"expected version {expected}, but the current version is {current}")
        self.expected = expected
        self.current = current


class InvalidInput(SyncBackboneError):
    """Input that is malformed or fails validation."""


class UnknownSchema(InvalidInput):
    """A record whose writer schema (type or fingerprint) is unknown."""


class TooLarge(InvalidInput):
    """Input over a size limit (a body, a document)."""


class ClockSkew(InvalidInput):
    """A hybrid logical clock further ahead of the server's time than SYNC_MAX_CLOCK_SKEW_MS allows."""


class LogError(SyncBackboneError):
    """The event log or the command bus failed an operation."""


class ConcurrencyConflict(LogError):
    """An append found an (aggregate, version) already taken."""


class WriterFenced(LogError):
    """This writer no longer owns the partition; a newer owner fenced it."""


class LogUnavailable(LogError):
    """The broker or database cannot be reached."""


class ConfigurationError(SyncBackboneError):
    """Settings that cannot work."""


class ResultTimeout(SyncBackboneError):
    """No command result arrived before the timeout."""


class Unauthenticated(SyncBackboneError):
    """No credentials, or credentials that cannot be verified (expired, badly signed, malformed)."""


class Forbidden(SyncBackboneError):
    """A verified caller that is not allowed to do what it asked."""


class RateLimited(SyncBackboneError):
    """A caller over its rate limit or its number of open streams; try again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


REJECTION_CODES: tuple[tuple[type[SyncBackboneError], str], ...] = (
    (VersionConflict, "version_conflict"),
    (CommandRejected, "rejected"),
    (DomainError, "domain_error"),
    (ClockSkew, "clock_skew"),
    (TooLarge, "too_large"),
    (InvalidInput, "invalid"),
)
"""The machine-readable code of each kind of refusal, most specific first."""


def rejection_code(error: SyncBackboneError) -> str:
    """The code a result carries when ``error`` refused its command (``invalid`` for any other error)."""
    return next((code for cls, code in REJECTION_CODES if isinstance(error, cls)), "invalid")
