"""The pure core: account state, signals, policy, episodes and the partition engine.

No I/O and no client libraries here (Kafka, Redis, files): the live worker and replay drive
the same engine, which is what makes their alerts agree.
"""
