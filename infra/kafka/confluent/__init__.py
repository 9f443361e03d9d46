"""The confluent-kafka (librdkafka) adapter of the Kafka client seam, and its fetch-hole handling.

Rule: the only code that imports confluent_kafka; only ``bootstrap`` (and the benches) import it.
"""
