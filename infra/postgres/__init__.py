"""The PostgreSQL adapters: the embedded log, bus and stream, snapshot and index stores, read models.

Rule: imports no ``kafka/`` code but the index-store port it implements; every psycopg
error is translated in ``database.py``.
"""
