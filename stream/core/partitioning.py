"""Kafka's default partitioner, so the core can place an account without importing a client.

Producers key every record by ``account_id``; Kafka's default partitioner sends a keyed record
to ``(murmur2(key) & 0x7fffffff) % partitions``. Replay must put each account on the partition
the live worker would see it on, so this module reproduces that function bit for bit (the
Java client's ``Utils.murmur2``) instead of depending on kafka-python from the pure core.
"""

from __future__ import annotations

from functools import lru_cache
from struct import Struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, Struct] = {}


def murmur2(data: bytes) -> int:
    """MurmurHash2 (32-bit, Kafka's seed) of ``data``, as an unsigned 32-bit integer.

    Java works on signed ints with ``>>>``; on Python's unbounded ints the same arithmetic is
    a mask after every multiplication and plain right shifts on the masked value.
    """
    length = len(data)
    h = _SEED ^ length
    count = length // 4
    if count:
        words = _WORDS.get(count)
        if words is None:
            words = _WORDS[count] = Struct(f"<{count}I")
        for k in words.unpack_from(data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            k = (k * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@lru_cache(maxsize=65_536)
def partition_for(account_id: str, partitions: int) -> int:
    """Kafka's default partition for a record keyed by ``account_id`` (murmur2, as producers).

    Cached: replay asks once per event, and the same few thousand accounts recur all day.
    """
    if partitions <= 1:
        return 0
    return (murmur2(account_id.encode()) & 0x7FFFFFFF) % partitions
