"""Alert actions in the Redis read model, applied once each, whatever the delivery.

Keys, under the read model's prefix ``{p}``:

* ``{p}:action_ids``: set of every applied ``action_id`` (what makes a redelivery a no-op);
* ``{p}:acct:{id}:actions``: list of the account's action records (JSON), in arrival order;
  :func:`stream.sinks.alert_actions.fold` orders them by time, so arrival order never matters;
* ``{p}:ver`` / ``{p}:changed``: bumped like the alert and snapshot scripts do, so the list
  index re-reads the account (a snooze takes it off the default risk list at once).

The alert an action names need not have reached Redis yet: a rebuild reads the alerts and the
actions topics side by side, in no order between them.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis

from schemas.actions import AlertAction, encode_action
from stream.sinks.alert_actions import fold

_APPLY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[3]), ARGV[3])
return 1
"""


class RedisActions:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.p = prefix
        self._apply = client.register_script(_APPLY)

    def apply(self, actions: Iterable[AlertAction]) -> int:
        """Apply in one round trip; returns how many were new. Raises ``redis.RedisError`` when
        Redis did not take them all (applying again is safe)."""
        pipe = self.r.pipeline(transaction=False)
        count = 0
        for action in actions:
            p, account = self.p, action.account_id
            keys = [f"{p}:action_ids", f"{p}:acct:{account}:actions", f"{p}:ver", f"{p}:changed"]
            self._apply(keys=keys, args=[action.action_id, encode_action(action), account],
                        client=pipe)  # fmt: skip
            count += 1
        if not count:
            return 0
        return sum(int(x) for x in pipe.execute())

    def seen(self, action_id: str) -> bool:
        """Whether the action was applied already (a client's retry, or the feed's)."""
        return bool(self.r.sismember(f"{self.p}:action_ids", action_id))

    def of_account(self, account_id: str) -> dict[str, dict]:
        """The account's alerts' states (see :func:`~stream.sinks.alert_actions.fold`)."""
        return fold(orjson.loads(x) for x in self.r.lrange(f"{self.p}:acct:{account_id}:actions",
                                                           0, -1))  # fmt: skip
