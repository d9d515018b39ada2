"""The one JSON codec used on every wire and in every file.

Everything churnwatch writes goes through :func:`dumps` so that the live worker and the
offline replay produce byte-identical output for the same alerts: one library (orjson), one
set of options (UTC datetimes rendered with ``Z``), field order taken from the models.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

_DUMP_OPTIONS = orjson.OPT_UTC_Z

JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text; raises :class:`JSONDecodeError` on malformed input."""
    return orjson.loads(data)


def dumps(obj: Any) -> bytes:
    """Serialise plain data (dicts, lists, datetimes) to compact JSON bytes."""
    return orjson.dumps(obj, option=_DUMP_OPTIONS)


def dump_model(model: BaseModel) -> bytes:
    """Serialise a pydantic model; ``None`` fields are kept so the payload shape is fixed."""
    return orjson.dumps(model.model_dump(mode="python"), option=_DUMP_OPTIONS)


def dumps_pretty(obj: Any) -> bytes:
    """Indented, key-sorted JSON for files people read and diff (the published schema)."""
    return orjson.dumps(obj, option=_DUMP_OPTIONS | orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
