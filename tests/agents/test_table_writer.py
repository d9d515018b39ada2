"""TableWriter on both of Faust's stores: the value lands in the partition asked for.

The writer relies on store internals of faust-streaming (``RocksDB._db_for_partition``,
``._key_index``, the memory store's ``data``); these tests fail when an upgrade moves them.
The changelog send is replaced by a recorder: Kafka is the end-to-end tests' business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
import pytest
from faust.stores.memory import Store as MemoryStore

from agents.table_writer import TableWriter


def _table(store: str, datadir: Path) -> tuple[Any, list[tuple]]:
    app = faust.App(f"tw-{store}", broker="kafka://localhost:1", store=f"{store}://",
                    datadir=str(datadir), autodiscover=False)  # fmt: skip
    table = app.Table("accounts", default=None, key_type=bytes, value_type=bytes, partitions=4)
    sent: list[tuple] = []

    def send_changelog(partition: int, key: bytes, value: bytes | None, **kw: object) -> str:
        sent.append((partition, key, value, kw))
        return "future"

    table.send_changelog = send_changelog
    return table, sent


def _stored(table: Any, partition: int, key: bytes) -> bytes | None:
    store = table.data
    if isinstance(store, MemoryStore):
        return store.data.get(key)
    return store._db_for_partition(partition).get(key)


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_put_stores_the_value_and_sends_it_to_the_same_changelog_partition(store, tmp_path):
    table, sent = _table(store, tmp_path)
    writer = TableWriter(table)
    assert writer.put(3, b"acct-1", b"state") == "future", "the caller awaits the send"
    assert _stored(table, 3, b"acct-1") == b"state"
    assert sent == [(3, b"acct-1", b"state", {})]
    if store == "rocksdb":
        assert _stored(table, 0, b"acct-1") is None, "only in the partition asked for"
        assert table.data._key_index[b"acct-1"] == 3


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_put_none_deletes_and_sends_a_raw_tombstone(store, tmp_path):
    table, sent = _table(store, tmp_path)
    writer = TableWriter(table)
    writer.put(2, b"acct-1", b"state")
    writer.put(2, b"acct-1", None)
    assert _stored(table, 2, b"acct-1") is None
    assert sent[-1] == (2, b"acct-1", None, {"value_serializer": "raw"})
    if store == "rocksdb":
        assert b"acct-1" not in table.data._key_index
