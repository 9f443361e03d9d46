"""The Kafka log's validated partition index: caught up on demand, saved and located through a port.

Rule: the saved index is reached only through ``store.IndexStore``.
"""
