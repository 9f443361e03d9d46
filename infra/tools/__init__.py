"""The demo and the benches.

Rule: may import anything; only ``cli/`` imports it, lazily.
"""
