"""Small helpers every role may use: partitioning, bounded maps, back-off, progress lines, net helpers.

Rule: imports nothing of ``infra`` and no driver.
"""
