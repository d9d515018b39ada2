"""Where alerts go after the topic: the Redis read model, the HTTP API and page, the terminal.

Reading map: ``readmodel_feed`` (consume alerts and billing into Redis, idempotently),
``readmodel_store`` and ``portfolio_store`` (the Redis side), ``readmodel`` (pure folds of an
account's alerts), ``alert_records`` (parsing alert records), ``api`` and ``web_page`` (aiohttp
JSON and HTML), ``serve`` (the process that runs feed and API), ``terminal`` (``alerts tail``
and ``account``). Never imports :mod:`stream.offline`.
"""
