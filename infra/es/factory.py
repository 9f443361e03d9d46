"""An eventsourcing persistence module on the embedded event log.

Select it with ``PERSISTENCE_MODULE=syncbackbone.infra.es.factory``. Settings (each may be
prefixed with the application's name, as eventsourcing does):

- ``SYNC_PG_DSN``: the PostgreSQL server (default: the local server on 127.0.0.1:5432).
- ``SYNC_NAMESPACE``: the schema prefix (default ``es``); an application ``Bank`` records
  its events in schema ``es_bank`` and its snapshots in ``es_bank_snapshots``.
- ``SYNC_PARTITIONS``: partitions of a new log (default 4).
"""

from __future__ import annotations

from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, InfrastructureFactory, ProcessRecorder
from eventsourcing.utils import Environment, EnvType, resolve_topic

from ..postgres.log import PostgresEventLog
from ..runtime.processes import LOCAL_PG_DSN
from .recorders import PostgresLogApplicationRecorder, PostgresLogProcessRecorder, PostgresLogTrackingRecorder


class EmbeddedLogFactory(InfrastructureFactory[PostgresLogTrackingRecorder]):
    """Builds recorders over ``PostgresEventLog``s, one log per purpose, shared and closed with the factory."""

    SYNC_PG_DSN = "SYNC_PG_DSN"
    SYNC_NAMESPACE = "SYNC_NAMESPACE"
    SYNC_PARTITIONS = "SYNC_PARTITIONS"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.dsn = self.env.get(self.SYNC_PG_DSN) or LOCAL_PG_DSN
        base = self.env.get(self.SYNC_NAMESPACE) or "es"
        app = self.env.name.lower()
        self.namespace = f"{base}_{app}" if app else base
        self.partitions = int(self.env.get(self.SYNC_PARTITIONS) or 4)
        self._logs: dict[str, PostgresEventLog] = {}

    def log(self, purpose: str = "events") -> PostgresEventLog:
        """The log that holds ``purpose`` (events in the namespace itself, others beside it)."""
        namespace = self.namespace if purpose == "events" else f"{self.namespace}_{purpose}"
        if namespace not in self._logs:
            self._logs[namespace] = PostgresEventLog(self.dsn, namespace, self.partitions)
        return self._logs[namespace]

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return PostgresLogApplicationRecorder(self.log(purpose))

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[PostgresLogApplicationRecorder] = resolve_topic(topic) if topic else PostgresLogApplicationRecorder
        return cls(self.log())

    def tracking_recorder(
        self, tracking_recorder_class: type[PostgresLogTrackingRecorder] | None = None
    ) -> PostgresLogTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else PostgresLogTrackingRecorder
        assert tracking_recorder_class is not None
        return tracking_recorder_class(self.log())

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: type[PostgresLogProcessRecorder] = resolve_topic(topic) if topic else PostgresLogProcessRecorder
        return cls(self.log())

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()


Factory = EmbeddedLogFactory
