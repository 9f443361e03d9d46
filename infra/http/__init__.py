"""The HTTP gateway: the FastAPI app, the sync routes, and a gateway thread for demos and benches.

Rule: imports ``bootstrap``, ``app/`` and the settings; never an adapter.
"""
