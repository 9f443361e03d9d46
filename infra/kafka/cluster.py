"""How every Kafka adapter starts: a client of the cluster, the broker's profile, and the namespace's topics.

The log, the bus and the stream each reach the cluster the same way, written here once: a client made
with ``connect`` (the library and broker profile ``bootstrap.kafka_connect`` chose), unless the caller
hands one in, which then stays the caller's to close; and, for those that own the namespace's topics,
the topics created where missing, with the partition count they share.
"""

from __future__ import annotations

from .brokers import BrokerProfile
from .client import Connect, KafkaClient
from .partitions import Topics, ensure_topics


class Cluster:
    """A client of one cluster (closed by ``close`` only if it was made here) and the profile of its broker."""

    def __init__(self, connect: Connect, bootstrap: str, client: KafkaClient | None = None) -> None:
        self.client = client or connect(bootstrap)
        self.broker: BrokerProfile = connect.broker
        self._made_here = client is None

    def topics(self, namespace: str, partitions: int) -> tuple[Topics, int]:
        """The topics of ``namespace``, created with ``partitions`` where missing, and the partition count they
        share (ConfigurationError if they are not co-partitioned)."""
        topics = Topics.of(namespace)
        return topics, ensure_topics(self.client, topics, partitions)

    def close(self) -> None:
        """Close the client if it was made here."""
        if self._made_here:
            self.client.close()
