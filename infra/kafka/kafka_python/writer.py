"""Writing with kafka-python: produce futures to offsets, and the transactional writer.

A commit, abort or send-offsets is started here and waited for at most its timeout
(``bounded_wait``): kafka-python's own calls retry without end when a broker drops the
connection, as Tansu does to a fenced producer. Past the timeout it is TransactionTimedOut;
the broker profile (``../brokers.py``) says what that means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any

from kafka import KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ....domain.errors import LogUnavailable
from ..client import GroupReader, Header, Outgoing, Security, TransactionalWriter, TransactionTimedOut
from .errors import translated

TIMEOUT_MS = 10_000
CONNECT = {"request_timeout_ms": TIMEOUT_MS, "bootstrap_timeout_ms": TIMEOUT_MS}
WRITE = {"enable_idempotence": True, "acks": "all", "batch_size": 1 << 20, "max_block_ms": TIMEOUT_MS, **CONNECT}


SECURITY = {"protocol": "security_protocol", "sasl_mechanism": "sasl_mechanism", "ssl_cafile": "ssl_cafile"}
SECURITY |= {"sasl_username": "sasl_plain_username", "sasl_password": "sasl_plain_password"}


def connection_config(bootstrap: str, security: Security) -> dict[str, Any]:
    """What every kafka-python client of the cluster at ``bootstrap`` is made with: the address and ``security``."""
    return {"bootstrap_servers": bootstrap, **security.config(SECURITY)}


def sent(producer: KafkaProducer, records: Sequence[Outgoing]) -> list[Any]:
    """Hand ``records`` to ``producer``; their futures."""
    send = producer.send
    return [send(r.topic, r.value, r.key, as_list(r.headers), r.partition, r.timestamp_ms) for r in records]


def as_list(headers: Sequence[Header]) -> list[Header]:
    """kafka-python wants headers as a list."""
    return headers if isinstance(headers, list) else list(headers)


def offsets_of(futures: Sequence[Any], what: str) -> list[int]:
    """The offsets of produce futures after a flush; the first failure is raised as ours."""
    for future in futures:
        if not future.is_done:
            raise LogUnavailable(f"{what}: a record was not acknowledged in time")
        if future.failed():
            with translated(what):
                raise future.exception
    return [future.value.offset for future in futures]


def bounded_wait(producer: KafkaProducer, begin: Callable[[], Any], what: str, timeout_s: float) -> None:
    """Start a commit, abort or send-offsets ourselves and wait at most ``timeout_s`` for it (kafka-python's own
    calls retry without end when a broker drops the connection, as Tansu does to a fenced producer)."""
    with translated(what):
        result = begin()
        producer._sender.wakeup()
        finished = result.wait(timeout_ms=timeout_s * 1000)
    if not finished:
        raise TransactionTimedOut(f"{what} did not finish within {timeout_s} s")


class KafkaPythonWriter(TransactionalWriter):
    """TransactionalWriter on a transactional kafka-python producer."""

    def __init__(self, connection: Mapping[str, Any], transactional_id: str) -> None:
        self.transactional_id = transactional_id
        with translated(f"connecting writer {transactional_id}"):
            self._producer = KafkaProducer(**connection, transactional_id=transactional_id, **WRITE)
        self._later: list[Any] = []

    def init(self) -> None:
        with translated(f"initialising writer {self.transactional_id}"):
            self._producer.init_transactions()

    def begin(self) -> None:
        self._later = []
        with translated(f"beginning a transaction of {self.transactional_id}"):
            self._producer.begin_transaction()

    def send(self, records: Sequence[Outgoing]) -> list[int]:
        what = f"writing in a transaction of {self.transactional_id}"
        with translated(what):
            futures = sent(self._producer, records)
            self._producer.flush(TIMEOUT_MS / 1000)
        return offsets_of(futures, what)  # flush does not raise: a fenced send shows only in its future

    def send_later(self, records: Sequence[Outgoing]) -> None:
        with translated(f"writing in a transaction of {self.transactional_id}"):
            self._later.extend(sent(self._producer, records))

    def send_offsets(self, group: GroupReader, topic: str, offsets: Mapping[int, int], timeout_s: float) -> None:
        positions = {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        manager = self._producer._transaction_manager
        begin = lambda: manager.send_offsets_to_transaction(positions, group.group_metadata())  # noqa: E731
        bounded_wait(self._producer, begin, f"sending offsets in a transaction of {self.transactional_id}", timeout_s)

    def commit(self, timeout_s: float) -> None:
        what = f"committing a transaction of {self.transactional_id}"
        with translated(what):
            self._producer.flush(timeout_s)
        offsets_of(self._later, what)
        bounded_wait(self._producer, self._producer._transaction_manager.begin_commit, what, timeout_s)

    def abort(self, timeout_s: float) -> None:
        what = f"aborting a transaction of {self.transactional_id}"
        bounded_wait(self._producer, self._producer._transaction_manager.begin_abort, what, timeout_s)

    def close(self) -> None:
        with suppress(Exception):  # a fenced producer may fail to close; it is dropped either way
            self._producer.close(timeout=0, null_logger=True)
