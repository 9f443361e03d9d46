"""Avro schemas (.avsc) of the event envelope, every event, command and result, by version."""
