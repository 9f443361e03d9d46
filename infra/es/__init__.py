"""The eventsourcing library's persistence module over our event logs.

Rule: selected by ``PERSISTENCE_MODULE=syncbackbone.infra.es.factory``; nothing of ours imports it.
"""
