"""Tools for development, tests, benchmarks and the demo; nothing here runs in production.

Reading map: ``simulator`` (seeded logs with known outcomes, several churn scenarios),
``brokers`` (Apache Kafka in KRaft mode from Maven Central jars, or the embedded broker),
``redis_server`` (a throwaway ``redis-server``), ``deployment`` (workers, CLI and topics as the
end-to-end tests drive them), ``demo`` (``churnwatch demo``).
"""
