"""Account-health snapshots in Redis: one atomic script per snapshot, the rules of
:mod:`stream.sinks.health_model`.

Keys, under the read model's prefix ``{p}``:

* ``{p}:hs:{id}``: hash with the latest snapshot (``snap``, its JSON) and its ``day`` number;
* ``{p}:hist:{id}``: the daily history, one string of 180 fixed-width slots
  (:data:`~stream.sinks.health_model.SLOT`, 28 bytes: 5,040 bytes an account once full),
  created at its full length and written in place with ``SETRANGE``;
* ``{p}:rows``: hash account id -> the latest snapshot's list fields (a few hundred bytes),
  what the account lists read for every account at once;
* ``{p}:ver`` and ``{p}:changed``: a change counter and a sorted set of account -> the
  counter's value at its last change, shared with the alert script, so the API's list index
  (:mod:`stream.sinks.accounts_index`) reads only the accounts that changed since it last
  looked.

The day in a slot is compared as four bytes read back in the script, so the rule "a slot is
only overwritten by the same or a later day" holds inside Redis, whatever order snapshots come
in. A snapshot applied twice writes nothing and returns 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis

from stream.sinks.health_model import (
    HISTORY_DAYS,
    SLOT,
    day_number,
    encode_slot,
    history,
    list_fields,
    slot_offset,
)

_APPLY = """
local day = tonumber(ARGV[1])
local changed = 0
local held = redis.call('HGET', KEYS[1], 'day')
if (not held) or tonumber(held) <= day then
  if redis.call('HGET', KEYS[1], 'snap') ~= ARGV[2] then
    redis.call('HSET', KEYS[1], 'day', ARGV[1], 'snap', ARGV[2])
    redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])
    local v = redis.call('INCR', KEYS[4])
    redis.call('ZADD', KEYS[5], v, ARGV[5])
    changed = 1
  end
end
local at = tonumber(ARGV[6])
local size = tonumber(ARGV[7])
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- Created at its full length at once: grown slot by slot, Redis would double the string's
  -- allocation on each growth and keep up to twice the 5,040 bytes.
  redis.call('SETRANGE', KEYS[2], tonumber(ARGV[8]) - 1, '\0')
end
local slot = redis.call('GETRANGE', KEYS[2], at, at + size - 1)
local slot_day = -1
if #slot == size then
  local a, b, c, d = string.byte(slot, 1, 4)
  slot_day = ((a * 256 + b) * 256 + c) * 256 + d - 1
end
if slot_day <= day and slot ~= ARGV[3] then
  redis.call('SETRANGE', KEYS[2], at, ARGV[3])
  changed = 1
end
return changed
"""


class RedisHealth:
    """Writes snapshots into Redis and reads an account's latest snapshot and trend."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.p = prefix
        self._apply = client.register_script(_APPLY)

    def keys(self, account: str) -> list[str]:
        p = self.p
        return [f"{p}:hs:{account}", f"{p}:hist:{account}", f"{p}:rows", f"{p}:ver",
                f"{p}:changed"]  # fmt: skip

    def apply(self, snapshots: Iterable[dict]) -> int:
        """Apply snapshots in order in one round trip; returns how many changed anything.

        Raises ``redis.RedisError`` if Redis did not take them all; applying the batch again
        is safe (the feed does so after an outage).
        """
        pipe = self.r.pipeline(transaction=False)
        count = 0
        for snap in snapshots:
            day = day_number(snap["day"])
            args = [day, orjson.dumps(snap), encode_slot(snap), orjson.dumps(list_fields(snap)),
                    snap["account_id"], slot_offset(day), SLOT.size,
                    HISTORY_DAYS * SLOT.size]  # fmt: skip
            self._apply(keys=self.keys(snap["account_id"]), args=args, client=pipe)
            count += 1
        return sum(int(x) for x in pipe.execute()) if count else 0

    def latest(self, account: str) -> tuple[dict | None, list[dict]]:
        """The latest snapshot (None if none came) and the trend, oldest day first."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(f"{self.p}:hs:{account}", "snap", "day")
        pipe.get(f"{self.p}:hist:{account}")
        (raw, day), slots = pipe.execute()
        if raw is None:
            return None, history(slots)
        return orjson.loads(raw), history(slots, int(day))
