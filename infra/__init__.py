"""Adapters and entry points: Kafka, PostgreSQL, Avro, settings, bootstrap, CLI."""
