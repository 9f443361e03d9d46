"""The transactional writer on a confluent-kafka producer.

librdkafka bounds every transaction call by the timeout it is given: a commit, abort or send-offsets
that runs out of time is TransactionTimedOut (the broker profile says what that means). One
confluent-kafka quirk is handled here: a producer in a fatal state (fenced) purges its records, and the
fatal error itself may be lost (``errors.py``), so a purge while writing means the writer is done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from confluent_kafka import Producer, TopicPartition

from ....domain.errors import LogError, WriterFenced
from ..client import GroupReader, Outgoing, TransactionalWriter
from .errors import PURGED, TIMEOUT_S, translated
from .records import Deliveries, produced

WRITE = {"enable.idempotence": True, "acks": "all", "linger.ms": 1, "message.timeout.ms": int(TIMEOUT_S * 1000)}


class ConfluentWriter(TransactionalWriter):
    """TransactionalWriter on a transactional confluent-kafka producer."""

    def __init__(self, connection: Mapping[str, Any], transactional_id: str) -> None:
        self.transactional_id = transactional_id
        with translated(f"connecting writer {transactional_id}"):
            self._producer = Producer({**connection, **WRITE, "transactional.id": transactional_id})
        self._later: list[Deliveries] = []

    def _wait(self, reports: Deliveries, what: str, timeout_s: float = TIMEOUT_S) -> list[int]:
        """The offsets of ``reports``; a purge means the producer hit a fatal error: WriterFenced."""
        try:
            return reports.wait(self._producer, what, timeout_s)
        except LogError as e:
            if isinstance(e, WriterFenced) or reports.error is None or reports.error.code() not in PURGED:
                raise
            raise WriterFenced(f"{what}: the producer dropped its records after a fatal error") from e

    def init(self) -> None:
        with translated(f"initialising writer {self.transactional_id}", transaction_call=True):
            self._producer.init_transactions(TIMEOUT_S)

    def begin(self) -> None:
        self._later = []
        with translated(f"beginning a transaction of {self.transactional_id}"):
            self._producer.begin_transaction()

    def send(self, records: Sequence[Outgoing]) -> list[int]:
        what = f"writing in a transaction of {self.transactional_id}"
        return self._wait(produced(self._producer, records, what), what)

    def send_later(self, records: Sequence[Outgoing]) -> None:
        self._later.append(produced(self._producer, records, f"writing in a transaction of {self.transactional_id}"))

    def send_offsets(self, group: GroupReader, topic: str, offsets: Mapping[int, int], timeout_s: float) -> None:
        positions = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        with translated(f"sending offsets in a transaction of {self.transactional_id}", transaction_call=True):
            self._producer.send_offsets_to_transaction(positions, group.group_metadata(), timeout_s)

    def commit(self, timeout_s: float) -> None:
        what = f"committing a transaction of {self.transactional_id}"
        for reports in self._later:
            self._wait(reports, what, timeout_s)
        with translated(what, transaction_call=True):
            self._producer.commit_transaction(timeout_s)

    def abort(self, timeout_s: float) -> None:
        with translated(f"aborting a transaction of {self.transactional_id}", transaction_call=True):
            self._producer.abort_transaction(timeout_s)

    def close(self) -> None:
        with suppress(Exception):  # a fenced producer may fail to purge; it is dropped either way
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
