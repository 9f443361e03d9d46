"""The raw kafka-python producer rate: the baseline ``bench commands`` sets its Kafka figures against."""

from __future__ import annotations

import time

from kafka import KafkaProducer


def raw_produce_rate(bootstrap_servers: str, count: int, topic: str = "bench-raw") -> float:
    """Records/s of ``count`` 200-byte records sent with acks=all over 4 partitions, flushed."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, batch_size=1 << 20)
    value = b"x" * 200
    started = time.perf_counter()
    for i in range(count):
        producer.send(topic, value=value, key=str(i % 1000).encode(), partition=i % 4)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return count / elapsed
