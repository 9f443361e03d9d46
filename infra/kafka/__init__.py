"""The Kafka adapters: the client seam (``client.py``), topics, log, bus, stream, the partition index.

Rule: never imports ``postgres/`` or psycopg (the index store is a port defined in
``index/store.py``, implemented under ``postgres/``); only ``bootstrap`` chooses a client
adapter (``kafka_python/``), and nothing here names a client library.
"""
