"""The domain: synced documents, their events and conflict policies. Pure Python, no I/O."""
