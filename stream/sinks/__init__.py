"""Where alerts go after the topic: the Redis read model, the HTTP API and page, the terminal.

Reading map: ``readmodel_feed`` (consume alerts, billing and account-health snapshots into
Redis, idempotently), ``readmodel_store``, ``health_store`` and ``portfolio_store`` (the Redis
side), ``readmodel`` and ``health_model`` (pure rules and in-memory oracles of an account's
alerts and snapshots), ``account_rows`` (one list row per account from both, the lists' sorts
and filters), ``accounts_index`` (the API's cached rows, refreshed from what changed),
``alert_records`` (parsing alert records), ``api`` and ``web_page`` (aiohttp JSON and HTML),
``serve`` (the process that runs feed and API), ``terminal`` (``alerts tail`` and
``account``). Never imports :mod:`stream.offline`.
"""
