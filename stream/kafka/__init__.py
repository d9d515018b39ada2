"""Kafka around the worker: settings (``CHURNWATCH_*``), topic creation and checks, produce.

Reading map: ``settings`` (every variable, validated with errors that name it), ``topics``
(create or check partitions and retention), ``produce`` (an event log into the input topics,
keyed by account, each event's time as the record timestamp).
"""
