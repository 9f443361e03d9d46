"""The Kafka adapters: the client seam (``client.py``), broker profiles (``brokers.py``), topics, log, bus,
stream, the partition index (``index/``), and where idle readers wait (``tail.py``).

Rule: never imports ``postgres/`` or psycopg (the index store is a port defined in
``index/store.py``, implemented under ``postgres/``); only ``bootstrap`` chooses a client
adapter (``kafka_python/``), and nothing here names a client library.
"""
