"""Our murmur2 partitioner is Kafka's, bit for bit, so replay places accounts as producers do."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_murmur2

from stream.core.engine import partition_for as engine_partition_for
from stream.core.partitioning import murmur2, partition_for


def test_murmur2_matches_kafka_python_on_random_keys():
    rng = random.Random(20260105)
    for _ in range(5000):
        key = rng.randbytes(rng.randrange(0, 70))
        assert murmur2(key) == kafka_murmur2(key), key


def test_murmur2_matches_the_java_clients_test_vectors():
    # org.apache.kafka.common.utils.UtilsTest (signed 32-bit results).
    vectors = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536}
    for key, signed in vectors.items():
        assert (murmur2(key.encode()) ^ 0x80000000) - 0x80000000 == signed


def test_partition_for_matches_kafkas_default_partitioner_on_account_ids():
    rng = random.Random(7)
    for i in range(3000):
        account = f"acct-{i:05d}" if i % 2 else "".join(rng.choices("abcxyz-_é0123", k=i % 40))
        for partitions in (2, 3, 6, 12, 64):
            expected = (kafka_murmur2(account.encode()) & 0x7FFFFFFF) % partitions
            assert partition_for(account, partitions) == expected
    assert partition_for("acct-00001", 1) == 0


def test_engine_keeps_exporting_partition_for():
    assert engine_partition_for is partition_for
