"""Process management: the embedded PostgreSQL server, the Tansu broker, the snapshot scheduler.

Rule: never imports adapters.
"""
