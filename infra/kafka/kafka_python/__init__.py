"""The kafka-python adapter of the Kafka client seam, and its fetch-hole handling.

Rule: the only code that imports kafka-python; only ``bootstrap`` (and the benches) import it.
"""
