"""The one translation of confluent-kafka's errors into ours (``domain/errors.py``), and the settings every client
of this adapter is made with.

confluent-kafka raises ``KafkaException`` carrying a ``KafkaError``. Two quirks are handled here: once a
producer hit a fatal error, ``flush`` serves delivery callbacks with that error pending and raises
SystemError (the KafkaException is its cause, or is lost); and a full local queue is a BufferError.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from ....domain.errors import ConfigurationError, LogError, LogUnavailable, SyncBackboneError, WriterFenced
from ..client import Security, TransactionTimedOut

TIMEOUT_S = 10.0
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}
TRANSIENT = {KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT}
REFUSED = {KafkaError._SSL, KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
REFUSED |= {KafkaError.UNSUPPORTED_SASL_MECHANISM, KafkaError.ILLEGAL_SASL_STATE}
LIBRDKAFKA_LOG = logging.getLogger(f"{__package__}.librdkafka")
SECURITY = {"protocol": "security.protocol", "sasl_mechanism": "sasl.mechanism", "ssl_cafile": "ssl.ca.location"}
SECURITY |= {"sasl_username": "sasl.username", "sasl_password": "sasl.password"}


def connection_config(bootstrap: str, security: Security) -> dict[str, Any]:
    """What every confluent-kafka client of the cluster at ``bootstrap`` is made with: the address, ``security``,
    timeouts, and librdkafka's log sent to Python's logging."""
    config = {"bootstrap.servers": bootstrap, **security.config(SECURITY)}
    timeouts = {"socket.timeout.ms": int(TIMEOUT_S * 1000), "socket.connection.setup.timeout.ms": int(TIMEOUT_S * 1000)}
    return {**config, **timeouts, "log.connection.close": False, "logger": LIBRDKAFKA_LOG}


def ours(error: KafkaError, what: str, transaction_call: bool = False) -> SyncBackboneError:
    """Our error for a librdkafka error: WriterFenced (fenced or fatal), TransactionTimedOut (a transaction call that
    ran out of time), LogUnavailable (retriable, timeouts, lost brokers), ConfigurationError (settings that cannot
    work: a bad argument, TLS or login failures) or LogError."""
    code = error.code()
    if code in FENCED or error.fatal():
        return WriterFenced(f"{what}: another writer took over: {error.str()}")
    if transaction_call and code in TRANSIENT:
        return TransactionTimedOut(f"{what} did not finish in time: {error.str()}")
    if code in REFUSED:
        return ConfigurationError(f"{what}: check SYNC_KAFKA_SECURITY_PROTOCOL and its settings: {error.str()}")
    if code == KafkaError._INVALID_ARG:
        return ConfigurationError(f"{what}: librdkafka refuses its settings: {error.str()}")
    if error.retriable() or code in TRANSIENT:
        return LogUnavailable(f"{what}: the Kafka cluster is unavailable: {error.str()}")
    return LogError(f"{what}: {error.str()}")


def from_exception(e: BaseException, what: str, transaction_call: bool) -> SyncBackboneError:
    error = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
    return LogError(f"{what}: {e}") if error is None else ours(error, what, transaction_call)


@contextmanager
def translated(what: str, transaction_call: bool = False) -> Iterator[None]:
    """Re-raise confluent-kafka errors as ours, ``from`` the original (see the module docstring for the quirks)."""
    try:
        yield
    except SyncBackboneError:
        raise
    except KafkaException as e:
        raise from_exception(e, what, transaction_call) from e
    except SystemError as e:
        raise from_exception(e.__cause__ or e, what, transaction_call) from e
    except BufferError as e:
        raise LogUnavailable(f"{what}: the producer queue is full: {e}") from e
