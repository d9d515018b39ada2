"""Account state to bytes and back: the value format of the changelog-backed table.

Layout (version 5)::

    b"CW" | version (1 byte) | scalar length (4 bytes, big-endian) | scalars (orjson) | rings

Version 5 added the product-quality and purchase signals: three scalars after the episodes
(the days of recent high/urgent tickets, the ticket log of bug links and resolutions, the
purchase log; the last two ``null`` for accounts without them) and five risk bytes. Values of
versions 2 to 4 decode with those empty and their eleven risk bytes in place.
Version 4 added the account's name and owner (two scalars after the others); older values
decode with both unknown. Version 3 added an episode's stored reason (with one alert episode
per account, what each open signal last published): a fifth element of the episode's list,
present only while such an episode is open, so an account whose episodes carry none is stored
as in version 2.
Version 2 added the weekly per-feature counts (a scalar list, empty unless the policy tracks
features) and the ``churn_risk`` risk byte. Version 1 values are still read: they had one risk
byte fewer and no feature counts, so they decode with those empty.

The scalars are a JSON array in a fixed field order; the rings (daily counters, the user sketch,
the remembered event ids, the risks) follow as raw bytes in a fixed order and size. A value
written by a newer version is refused with a clear error rather than misread, which is what
makes a rolling upgrade or rollback of the state schema safe to reason about.
"""

from __future__ import annotations

from array import array

import orjson

from stream.core import ring
from stream.core.purchase_log import PurchaseLog
from stream.core.state import DEDUP_HORIZON, AccountState, Episode, StoredReason
from stream.core.ticket_log import TicketLog

MAGIC = b"CW"
VERSION = 5
_READABLE = (1, 2, 3, 4, 5)
_OLD_SIGNALS = {1: 10, 2: 11, 3: 11, 4: 11}  # risk bytes in a value of an older version
_HEADER = len(MAGIC) + 1 + 4

_SCALARS = (
    "account_id",
    "first_day",
    "head_day",
    "closed_day",
    "created_ms",
    "segment",
    "plan",
    "mrr",
    "seats",
    "billing_period",
    "cancelled_ms",
    "last_usage_ms",
    "activated_users",
    "recent_pos",
    "last_paid_ms",
    "contraction_ms",
    "contraction_from_mrr",
    "contraction_to_mrr",
    "nps_score",
    "nps_prev",
    "nps_ms",
    "applied",
    "clock_ms",
    "feature_week",
    "name",
    "owner",
)
_SCALARS_BY_VERSION = {
    1: _SCALARS[:-3],
    2: _SCALARS[:-2],
    3: _SCALARS[:-2],
    4: _SCALARS,
    5: _SCALARS,
}
_COUNTERS = ("logins", "minutes", "features", "tickets")
_BLOBS = (*_COUNTERS, "users", "recent_ids", "risk")


class StateFormatError(ValueError):
    """Bytes that are not a state this version can read."""


def encode_state(acct: AccountState) -> bytes:
    scalars = [getattr(acct, name) for name in _SCALARS]
    scalars.append(acct.failures)
    scalars.append([list(o) for o in acct.overdue])
    scalars.append(acct.feature_weeks.tolist())
    scalars.append({signal: _episode(ep) for signal, ep in acct.episodes.items()})
    scalars.append(acct.hot_days.tolist())
    scalars.append(acct.ticket_log.to_list() if acct.ticket_log is not None else None)
    scalars.append(acct.purchases.to_list() if acct.purchases is not None else None)
    head = orjson.dumps(scalars)
    parts = [MAGIC, bytes([VERSION]), len(head).to_bytes(4, "big"), head]
    for name in _BLOBS:
        blob = getattr(acct, name)
        parts.append(blob.tobytes() if isinstance(blob, array) else bytes(blob))
    return b"".join(parts)


def _episode(ep: Episode) -> list:
    fields: list = [ep.start_ms, ep.severity, ep.seq, ep.opens]
    reason = ep.reason
    if reason is not None:
        fields.append([*reason[:-1], [list(fact) for fact in reason.facts]])
    return fields


def _reason(fields: list) -> StoredReason:
    *head, facts = fields
    return StoredReason(*head, tuple((ms, text) for ms, text in facts))


def decode_state(data: bytes) -> AccountState:
    if data[:2] != MAGIC:
        raise StateFormatError("not a churnwatch account state")
    version = data[2]
    if version not in _READABLE:
        raise StateFormatError(
            f"account state version {version} is not readable by this release (reads "
            f"{', '.join(map(str, _READABLE))})"
        )
    fields = _SCALARS_BY_VERSION[version]
    size = int.from_bytes(data[3:_HEADER], "big")
    scalars = orjson.loads(data[_HEADER : _HEADER + size])
    acct = AccountState.__new__(AccountState)
    AccountState.__init__(acct, "", 0)
    for name, value in zip(fields, scalars, strict=False):
        setattr(acct, name, value)
    rest = scalars[len(fields) :]
    if version >= 5:
        *rest, hot, tickets, purchases = rest
        if hot:
            acct.hot_days = array("H", hot)
        if tickets is not None:
            acct.ticket_log = TicketLog.from_list(tickets)
        if purchases is not None:
            acct.purchases = PurchaseLog.from_list(purchases)
    if version >= 2:
        failures, overdue, weeks, episodes = rest
        if weeks:
            acct.feature_weeks = array("H", weeks)
    else:
        failures, overdue, episodes = rest
    acct.failures = list(failures)
    acct.overdue = [tuple(o) for o in overdue]
    if episodes:
        acct.episodes = {}
        for signal, (start, severity, seq, opens, *reason) in episodes.items():
            ep = Episode()
            ep.start_ms, ep.severity, ep.seq, ep.opens = start, severity, seq, list(opens)
            if reason:
                ep.reason = _reason(reason[0])
            acct.episodes[signal] = ep
    at = _HEADER + size
    for name in _BLOBS:
        blob = getattr(acct, name)
        width = len(blob.tobytes()) if isinstance(blob, array) else len(blob)
        if name == "risk" and version in _OLD_SIGNALS:
            width = _OLD_SIGNALS[version]
        chunk = data[at : at + width]
        if len(chunk) != width:
            raise StateFormatError("account state is truncated")
        if isinstance(blob, array):
            blob[:] = array(blob.typecode, chunk)
        else:
            blob[: len(chunk)] = chunk
        at += width
    if at != len(data):
        raise StateFormatError("account state has trailing bytes")
    assert len(acct.recent_ids) == 8 * DEDUP_HORIZON and len(acct.users) == ring.USER_RING_DAYS * 32
    return acct
