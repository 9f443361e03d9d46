"""The raw confluent-kafka producer rate: the baseline ``bench commands`` sets its Kafka figures against."""

from __future__ import annotations

import time

from confluent_kafka import Producer


def raw_produce_rate(bootstrap_servers: str, count: int, topic: str = "bench-raw") -> float:
    """Records/s of ``count`` 200-byte records sent with acks=all over 4 partitions, flushed."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all", "linger.ms": 5})
    value = b"x" * 200
    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value, str(i % 1000).encode(), i % 4)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.01)
    producer.flush()
    return count / (time.perf_counter() - started)
