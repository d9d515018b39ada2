"""Write account states to the Faust table for an explicit partition.

Faust's ``table[key] = value`` takes the partition from the event being iterated, but the
ingest agent flushes states once per burst of records, after the records that changed them may
have come from other partitions. This writer puts the value into the local store of the right
partition and sends the changelog record to the same partition, as Faust would.

It touches two private attributes of faust-streaming's RocksDB store (``_db_for_partition`` and
``_key_index``; why no public API will do is in ``agents/__init__.py``) and the memory store's
public ``data`` dict. The version pin in pyproject.toml guards them, and so do the tests of both
stores: ``tests/agents/test_table_writer.py`` on Faust's real stores, and the end-to-end tests,
whose workers run on RocksDB, with the live == replay parity test on the memory store too.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from faust.stores.memory import Store as MemoryStore


class TableWriter:
    def __init__(self, table: Any) -> None:
        self.table = table

    def put(self, partition: int, key: bytes, value: bytes | None) -> Awaitable[Any]:
        """Store the value; returns the changelog send, done once Kafka has the record."""
        store = self.table.data
        if isinstance(store, MemoryStore):
            if value is None:
                store.data.pop(key, None)
            else:
                store.data[key] = value
        else:  # RocksDB: one database per partition
            db = store._db_for_partition(partition)
            if value is None:
                db.delete(key)
                store._key_index.pop(key, None)
            else:
                db.put(key, value)
                store._key_index[key] = partition
        if value is None:
            return self.table.send_changelog(partition, key, None, value_serializer="raw")
        return self.table.send_changelog(partition, key, value)
