"""The API alone over an existing Redis read model, for bench/api_bench.py.

python bench/api_server.py REDIS_URL PREFIX PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.core.policy import load_policy
from stream.run.metrics import Registry
from stream.sinks.api import build_app
from stream.sinks.readmodel_store import RedisReadModel

if __name__ == "__main__":
    url, prefix, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = RedisReadModel.from_url(url, prefix)
    web.run_app(build_app(store, load_policy(None), Registry()), host="127.0.0.1", port=port,
                print=None)  # fmt: skip
