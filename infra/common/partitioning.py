"""Which partition holds an aggregate: Kafka's default partitioner, shared by every log.

Both the Kafka log and the embedded PostgreSQL log place a key with
``(murmur2(key) & 0x7fffffff) % partitions``, so an aggregate lives in the same
partition whichever log holds it, and the command and event topics stay co-partitioned.
``murmur2`` is vendored (Kafka's ``Utils.murmur2``) so that no log needs a Kafka client
library to place a key; a unit test holds it equal to kafka-python's.
"""

from __future__ import annotations

from functools import lru_cache

SEED, M, R, MASK = 0x9747B28C, 0x5BD1E995, 24, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as Kafka's Java client computes it (an unsigned 32-bit value)."""
    length = len(data)
    h = SEED ^ length
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * M) & MASK
        k ^= k >> R
        k = (k * M) & MASK
        h = ((h * M) & MASK) ^ k
    rest = length - tail
    if rest:
        h ^= int.from_bytes(data[tail:], "little")
        h = (h * M) & MASK
    h ^= h >> 13
    h = (h * M) & MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=65536)
def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``, as Kafka's default partitioner picks it."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
