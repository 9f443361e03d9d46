"""Avro: the schema registry, the codec of records and payloads, event upcasting.

Rule: knows bytes, not transports; never imports ``kafka/``, ``postgres/`` or ``app/``.
"""
