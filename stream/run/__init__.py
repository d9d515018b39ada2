"""The drivers around the core: what the live worker and replay both run.

Reading map: ``validate`` (bytes to an event or a rejection, one rule for every entry point),
``merge`` (usage and billing into event-time order), ``live`` (per Kafka record: the
``LiveProcessor`` the Faust agent hands records to), ``delivery`` (the gate that checks a
partition's offsets arrive once and in order), ``replay`` (a log file through the same engine),
``logio`` (log files: gzip, stdin, oversized lines, rejects), ``metrics`` (Prometheus text).
Faust itself stays in :mod:`agents`, so everything here runs in a test without a broker.
"""
