"""The projections' read models on PostgreSQL: the store with checkpoints, claims, queries, SQL, diffs.

Rule: one schema per copy of a projection; the checkpoint moves in the read model's transaction.
"""
