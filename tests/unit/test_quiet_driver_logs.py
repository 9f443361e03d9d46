"""What the CLI hides of kafka-python's logging, and what it keeps."""

from __future__ import annotations

import logging

from syncbackbone.infra.cli.main import QuietDriver


def record(name: str, message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_event_loop_timing_warnings_are_hidden_everywhere() -> None:
    timing = record("kafka.net.selector", "Task <kafka.net.selector.Task> ran for 0.115s (>0.100s threshold)")
    assert not QuietDriver(bench=False).filter(timing)


def test_fencing_errors_are_hidden_in_benches_only() -> None:
    fenced = record("kafka.producer.sender", "Aborting producer batches: [Error 90] ProducerFencedError", logging.ERROR)
    assert not QuietDriver(bench=True).filter(fenced)
    assert QuietDriver(bench=False).filter(fenced)


def test_other_driver_errors_and_our_own_logs_are_kept() -> None:
    unreachable = record("kafka.client", "Unable to connect to 127.0.0.1:9092", logging.ERROR)
    ours = record("syncbackbone.infra.kafka.log", "ProducerFenced on partition 1: paused", logging.WARNING)
    assert QuietDriver(bench=True).filter(unreachable)
    assert QuietDriver(bench=True).filter(ours)
