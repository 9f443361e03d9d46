"""The one translation of kafka-python's errors into ours (``domain/errors.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kafka.errors as ke

from ....domain.errors import LogError, LogUnavailable, SyncBackboneError, WriterFenced


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Re-raise kafka-python errors as ours: WriterFenced, LogUnavailable (transient) or LogError."""
    try:
        yield
    except SyncBackboneError:
        raise
    except ke.KafkaError as e:
        if isinstance(e, ke.ProducerFencedError | ke.InvalidProducerEpochError) or "Fenced" in str(e):
            raise WriterFenced(f"{what}: another writer took over: {e}") from e
        if e.retriable:
            raise LogUnavailable(f"{what}: the Kafka cluster is unavailable: {e}") from e
        raise LogError(f"{what}: {e}") from e
