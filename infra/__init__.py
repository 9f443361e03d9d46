"""Everything that touches a technology or a person, one sub-package per role.

- ``settings``, ``bootstrap``: the settings model; the one place that wires adapters
  into services (only ``bootstrap`` sees adapters and services together).
- ``common/``: partitioning (murmur2, vendored), bounded maps, back-off, progress lines,
  net helpers; imports nothing of ``infra`` and no driver.
- ``avro/``: schema registry, codec, upcasting; knows bytes, not transports.
- ``kafka/``: the client seam, topics, log, bus, stream, partition index, broker
  profiles; never imports ``postgres/`` or psycopg. ``kafka/confluent/`` and
  ``kafka/kafka_python/``: the client adapters, the only code importing confluent-kafka
  and kafka-python.
- ``postgres/``: the ``Database``, log, bus, stream, snapshot and index stores, read
  models; imports no ``kafka/`` code but the index-store port it implements.
- ``es/``: the eventsourcing persistence module over our logs; nobody imports it.
- ``runtime/``: processes (embedded PostgreSQL, Tansu), the scheduler; no adapters.
- ``app/``: application services (``Backbone``, read side, replay, audit export, sync);
  the core, ``common/`` and settings only: adapters arrive as constructor arguments.
- ``http/``, ``cli/``: the entry points; ``bootstrap``, ``app/`` and settings, never an adapter.
- ``tools/``: demo and benches; may import anything; only ``cli/`` imports it, lazily.

The rules are import-linter contracts in ``pyproject.toml``, checked by the test suite.
"""
