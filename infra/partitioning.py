"""Which partition holds an aggregate: Kafka's default partitioner, shared by every log.

Both the Kafka log and the embedded PostgreSQL log place a key with
``(murmur2(key) & 0x7fffffff) % partitions``, so an aggregate lives in the same
partition whichever log holds it, and the command and event topics stay co-partitioned.
"""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2


@lru_cache(maxsize=65536)
def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``, as Kafka's default partitioner picks it."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    digest: int = murmur2(key.encode("utf-8"))
    return (digest & 0x7FFFFFFF) % partitions
