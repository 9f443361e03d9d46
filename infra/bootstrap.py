"""The one place that wires adapters into the core, chosen by the settings.

``bootstrap()`` returns a ``Backbone`` (``app/backbone.py``): the Python API of a running
backbone. The settings choose the technologies: the embedded PostgreSQL log and bus, or
Kafka (through the client library ``kafka_connect`` picks) with PostgreSQL beside it for
snapshots, index checkpoints and read models. Nothing here does I/O at import time.
"""

from __future__ import annotations

from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx

from ..commands.ports import CommandBus, CommandStream, SnapshotStore
from ..commands.snapshots import Snapshots
from ..domain.errors import ConfigurationError
from ..projections.projection import Registry
from .app.auth import TokenVerifier, load_jwks
from .app.backbone import Backbone, Scheduler, Wiring, running
from .app.feed import LogFeed
from .app.read_side import ReadSide
from .avro.codec import AvroCodec
from .avro.upcasting import UpcastingCodec
from .common.secret_file import read_or_create
from .kafka.brokers import Connector, broker_profile
from .kafka.client import Connect, Security
from .postgres.database import Database
from .postgres.notifications import PostgresNotices
from .postgres.read_models.claims import AdvisoryLockClaims
from .postgres.read_models.queries import ReadModels
from .postgres.read_models.store import PostgresReadModelStore
from .postgres.snapshot_store import PostgresSnapshotStore, snapshot_mapper
from .runtime.processes import embedded_pg_dsn
from .runtime.scheduler import SnapshotScheduler
from .settings import Settings, load_settings

__all__ = ["Backbone", "bootstrap", "kafka_connect", "make_codec", "resolve_pg_dsn", "running"]


def resolve_pg_dsn(settings: Settings) -> str:
    """SYNC_PG_DSN, or the embedded PostgreSQL server under SYNC_DATA_DIR."""
    return settings.pg_dsn or embedded_pg_dsn(settings.data_dir)


def make_codec(settings: Settings) -> AvroCodec:
    """The Avro codec, compressing and encrypting payloads as configured."""
    keys = {settings.cipher_key_id: settings.cipher_key} if settings.cipher_key else None
    return UpcastingCodec(settings.compress, keys, settings.cipher_key_id if keys else None)


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """How the gateway verifies bearer tokens; None when SYNC_AUTH=off.

    SYNC_AUTH_JWKS (a file path or an https URL), else SYNC_AUTH_SECRET, else the secret
    generated once into SYNC_DATA_DIR/auth.secret (mode 0600; `syncbackbone token issue` signs with it).
    """
    if settings.auth == "off":
        return None
    if settings.auth_jwks:
        return TokenVerifier(settings.auth_audience, jwks=read_jwks(settings.auth_jwks))
    return TokenVerifier(settings.auth_audience, secret=auth_secret(settings))


def auth_secret(settings: Settings) -> bytes:
    """SYNC_AUTH_SECRET, or the secret in SYNC_DATA_DIR/auth.secret (made on first use)."""
    if settings.auth_secret:
        return settings.auth_secret.encode()
    return read_or_create(Path(settings.data_dir) / "auth.secret")


def read_jwks(where: str) -> dict[str, Any]:
    """The JWKS at a file path or URL, or ConfigurationError naming SYNC_AUTH_JWKS."""
    try:
        if where.startswith(("https://", "http://")):
            return load_jwks(httpx.get(where, timeout=10).raise_for_status().text)
        return load_jwks(Path(where).read_text())
    except (OSError, ValueError, httpx.HTTPError) as e:
        raise ConfigurationError(f"SYNC_AUTH_JWKS {where[:80]!r} cannot be read as a JWKS: {e}") from e


def kafka_connect(settings: Settings) -> Connect:
    """How the Kafka log, bus and stream make their client (the one place a client library is chosen:
    SYNC_KAFKA_CLIENT), connecting with the security settings, and the profile of the broker they talk to
    (SYNC_KAFKA_BROKER)."""
    broker = broker_profile(settings.kafka_broker, settings.marker_min_interval_ms)
    patience, security = broker.hole_patience_s, kafka_security(settings)
    if kafka_client_library(settings) == "confluent":
        from .kafka.confluent.client import ConfluentClient

        return Connector(partial(ConfluentClient, hole_patience_s=patience, security=security), broker)
    from .kafka.kafka_python.client import KafkaPythonClient

    return Connector(partial(KafkaPythonClient, hole_patience_s=patience, security=security), broker)


def kafka_client_library(settings: Settings) -> str:
    """SYNC_KAFKA_CLIENT; unset, kafka-python (confluent-kafka is opt-in until a writer fenced by a restart
    fails as WriterFenced rather than with librdkafka's fatal error: `bench recovery` on Kafka showed it)."""
    installed = find_spec("confluent_kafka") is not None
    if settings.kafka_client == "confluent" and not installed:
        raise ConfigurationError("SYNC_KAFKA_CLIENT=confluent needs confluent-kafka: pip install confluent-kafka")
    return settings.kafka_client or "kafka-python"


def kafka_security(settings: Settings) -> Security:
    """How Kafka clients connect (SYNC_KAFKA_SECURITY_PROTOCOL, SYNC_KAFKA_SASL_*, SYNC_KAFKA_SSL_CAFILE), or
    ConfigurationError naming what to set."""
    protocol = settings.kafka_security_protocol
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if protocol.startswith("SASL_") and not (user and password):
        raise ConfigurationError(
            f"SYNC_KAFKA_SECURITY_PROTOCOL={protocol} needs SYNC_KAFKA_SASL_USERNAME and SYNC_KAFKA_SASL_PASSWORD"
        )
    cafile = settings.kafka_ssl_cafile
    if cafile is not None and not cafile.is_file():
        raise ConfigurationError(f"SYNC_KAFKA_SSL_CAFILE={str(cafile)!r} is not a file")
    ca = None if cafile is None else str(cafile)
    return Security(protocol, settings.kafka_sasl_mechanism, user, password, ca)


class Adapters(Wiring):
    """What a backbone makes on demand: PostgreSQL for snapshots and read models, the bus's own streams."""

    def stream(self, backbone: Backbone) -> CommandStream:
        settings = backbone.settings
        if settings.embedded:
            from .postgres.log import PostgresEventLog
            from .postgres.stream import PostgresCommandStream

            assert isinstance(backbone.log, PostgresEventLog)
            return PostgresCommandStream(backbone.pg_dsn, settings.namespace, backbone.log)
        from .kafka.log import KafkaEventLog
        from .kafka.stream import KafkaCommandStream

        assert isinstance(backbone.log, KafkaEventLog) and settings.kafka_bootstrap
        return KafkaCommandStream(
            settings.kafka_bootstrap, settings.namespace, backbone.log, backbone.codec, connect=kafka_connect(settings)
        )

    def snapshot_store(self, backbone: Backbone) -> SnapshotStore:
        backbone.pg_dsn = backbone.pg_dsn or resolve_pg_dsn(backbone.settings)
        mapper = snapshot_mapper(backbone.settings)
        return PostgresSnapshotStore(backbone.pg_dsn, backbone.settings.namespace, mapper)

    def scheduler(self, snapshots: Snapshots, interval_s: float) -> Scheduler:
        return SnapshotScheduler(snapshots, interval_s).start()

    def read_side(self, backbone: Backbone, registry: Registry) -> ReadSide:
        dsn = backbone.pg_dsn or resolve_pg_dsn(backbone.settings)
        namespace = backbone.settings.namespace
        database = Database(dsn, f"read models of {namespace!r}", max_size=8)
        stores = {name: PostgresReadModelStore(database, namespace, registry.get(name)) for name in registry.names()}

        def claims(projection: str, member: bool) -> AdvisoryLockClaims:
            return AdvisoryLockClaims(database, namespace, projection, member=member)

        feed = LogFeed(backbone.log, backbone.codec)
        notices = PostgresNotices(dsn, namespace, registry.names())
        queries = ReadModels(database, namespace)
        return ReadSide(namespace, feed, registry, stores, queries, claims, database.close, notices)


def bootstrap(settings: Settings | None = None) -> Backbone:
    """Wire a backbone from ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    codec = make_codec(settings)
    dsn = resolve_pg_dsn(settings) if settings.embedded else (settings.pg_dsn or "")
    if settings.embedded:
        from .postgres.bus import PostgresCommandBus
        from .postgres.log import PostgresEventLog

        log = PostgresEventLog(dsn, settings.namespace, settings.partitions)
        bus: CommandBus = PostgresCommandBus(dsn, settings.namespace, codec, settings.partitions)
        return Backbone(settings, log, bus, codec, dsn, Adapters())
    from .kafka.bus import KafkaCommandBus
    from .kafka.log import KafkaEventLog
    from .postgres.index_store import PostgresIndexStore

    assert settings.kafka_bootstrap
    every = settings.index_checkpoint_every
    store = PostgresIndexStore(lambda: resolve_pg_dsn(settings), settings.namespace) if every else None
    connect = kafka_connect(settings)
    klog = KafkaEventLog(
        settings.kafka_bootstrap, settings.namespace, codec, settings.partitions, None, store, every, connect=connect
    )
    kbus = KafkaCommandBus(settings.kafka_bootstrap, settings.namespace, codec, settings.partitions, connect=connect)
    return Backbone(settings, klog, kbus, codec, dsn, Adapters())
