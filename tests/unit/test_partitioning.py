"""The vendored murmur2 places every key where Kafka's default partitioner (kafka-python's copy) does."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from syncbackbone.infra.common.partitioning import murmur2, partition_for


def test_the_vendored_murmur2_equals_kafka_pythons_for_ten_thousand_keys() -> None:
    rng = random.Random(20261130)
    keys = [rng.randbytes(rng.randrange(0, 64)) for _ in range(9_000)]
    keys += [f"notes/{i}".encode() for i in range(999)] + ["ünïcødé/ключ".encode()]
    assert len(keys) == 10_000
    mismatched = [k for k in keys if murmur2(k) != kafka_python_murmur2(k)]
    assert mismatched == []


def test_a_key_lands_in_the_partition_kafkas_default_partitioner_picks() -> None:
    for i in range(1_000):
        key = f"tasks/t{i}"
        assert partition_for(key, 12) == (kafka_python_murmur2(key.encode()) & 0x7FFFFFFF) % 12
