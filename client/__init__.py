"""The Python client SDK: a local SQLite replica with a durable outbox, synced in the background.

``SyncClient`` keeps the server's documents it has seen and the mutations made offline
in one SQLite file, pushes the outbox and pulls the change feed (with retries,
exponential backoff with jitter and a circuit breaker), and shows each document as the
server's state with the pending mutations rebased on top.
"""

from .outbox import SyncReport
from .sdk import SyncClient

__all__ = ["SyncClient", "SyncReport"]
