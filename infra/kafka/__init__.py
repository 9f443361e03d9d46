"""The Kafka adapters: the client seam (``client.py``), broker profiles (``brokers.py``), how each adapter
reaches the cluster (``cluster.py``), topics, log, bus, stream, the partition index (``index/``), where
idle readers wait (``tail.py``) and how long they wait at a fetch hole (``holes.py``).

Rule: never imports ``postgres/`` or psycopg (the index store is a port defined in
``index/store.py``, implemented under ``postgres/``); only ``bootstrap`` chooses a client
adapter (``confluent/`` or ``kafka_python/``), and nothing outside them names a client library.
"""
