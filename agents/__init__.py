"""Faust agents: thin adapters that decode records, call the core and send what it returns.

Modules, and the one direction their imports go::

    app -> ingest -> hooks, intake, metrics, checkpointer, table_writer -> churn

* ``app``: builds the ``faust.App``, topics and table, then has ``ingest`` register on it;
* ``churn``: :class:`~agents.churn.ChurnApp`, the worker's parts, shared by all of them;
* ``ingest``: the agent loop: receive -> process -> hand off;
* ``intake``: partition restore and the offset-gap check before a record is processed;
* ``checkpointer``: the commit protocol (flush -> changelog -> checkpoint -> commit);
* ``hooks``: timers, shutdown, rebalance and ``/metrics`` wiring (public Faust APIs only);
* ``metrics``: the Prometheus figures; ``table_writer``: table writes for a given partition;
* ``offsets``: committed offsets and gap probes asked of the broker with kafka-python.

Private attributes of faust-streaming 0.15.3 still used, and why no public API will do
(the version pin in pyproject.toml and the end-to-end tests on both stores guard them):

``Consumer._commit_offsets(offsets)`` (``ingest.offset_committer``)
    Commits explicit offsets. The public ``Consumer.commit(topics)`` commits only what Faust's
    ack bookkeeping allows, which the agent does not use (its input topics have no acks; see
    ``ingest.py`` for the races that made it unusable). aiokafka's public
    ``AIOKafkaConsumer.commit(offsets)`` takes explicit offsets, but Faust's consumer does not
    expose it (it sits behind the private ``consumer._thread``), and going around Faust would
    lose what ``_commit_offsets`` does with the commit: it drops offsets of partitions that are
    no longer assigned (a commit racing a revoke), commits through the transaction manager
    when ``processing_guarantee`` is ``exactly_once``, and updates ``_committed_offset`` and
    the tables' persisted offsets.
``Consumer._committed_offset`` (``metrics.WorkerCollector``)
    The lag of a partition assigned but with no record handed over yet is measured from its
    committed offset. Faust keeps it here and has no getter; aiokafka's ``committed(tp)`` is
    a coordinator round trip per partition (and again not exposed by Faust's consumer), too
    much for every scrape.
``Consumer._read_offset`` (``app.build_app``)
    Faust drops a fetched record below the last offset it read, which loses records when a
    seek races a fetch. There is no setting to turn that filter off; the app replaces the
    mapping so that input topics never have a read offset, and the delivery gate
    (``stream/run/delivery.py``) handles repeats and jumps instead.
``RocksDB Store._db_for_partition(partition)`` and ``._key_index`` (``table_writer``)
    A flush writes states of several partitions at once, outside any record's context. The
    public ``table[key] = value`` (and ``Store.__setitem__``) takes the partition from the
    current event, and the public ``Store.apply_changelog_batch`` needs Faust events and also
    records changelog offsets as persisted, which would be wrong for records not yet sent.
    The memory store's ``data`` dict is a public attribute.
``consumer._thread._ensure_consumer().last_poll_timestamp(tp)`` (``intake``)
    When the high watermark was last read: the merge of the two input topics needs it to know
    that "caught up" is not a stale answer (see ``stream/run/live.py``). aiokafka documents
    it; Faust only forwards ``highwater``.

Public APIs used everywhere else: ``app.rebalancing``, ``consumer.assignment()``,
``consumer.highwater(tp)``, ``consumer.seek(tp, offset)``, ``table.items()``,
``table.data``, ``table.send_changelog(partition, key, value)``, ``app.timer``, ``app.page``,
``app.on_before_shutdown``, ``app.on_partitions_revoked`` and ``app.crash``.
"""
