"""Values as a person reads them on a page: dates, money, counts and names in plain words.

The alert records and the read model keep raw values (ISO timestamps, enum names, floats) for
machines; the page shows "3 Apr 2026", "$2,600", "1 seat" and "Engagement drop" instead, and
never "-0".
"""

from __future__ import annotations

from datetime import UTC, date, datetime

_UPPER = {"nps": "NPS", "mrr": "MRR", "smb": "SMB", "cs": "CS", "api": "API"}


def when(value: str | date | None) -> datetime | date | None:
    """An ISO timestamp or date (as the records hold them), parsed; None if it is not one."""
    if value is None or isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if "T" not in text and len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed


def day(value: str | date | None) -> str:
    """``2026-04-03T14:05:00Z`` as "3 Apr 2026"; an unreadable value as a dash."""
    at = when(value)
    return f"{at.day} {at:%b %Y}" if at is not None else "–"


def moment(value: str | date | None) -> str:
    """``2026-04-03T14:05:00Z`` as "3 Apr 2026, 14:05 UTC" (a plain date as :func:`day`)."""
    at = when(value)
    if not isinstance(at, datetime):
        return day(value)
    return f"{at.day} {at:%b %Y}, {at:%H:%M} UTC"


def number(value: float | int | None, digits: int = 2) -> str:
    """A number with thousands separators and at most ``digits`` decimals, trailing zeros
    dropped; a value that rounds to zero is "0" whatever its sign."""
    if value is None:
        return "–"
    rounded = round(float(value), digits)
    if rounded == 0:
        return "0"
    text = f"{rounded:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money(value: float | None) -> str:
    """MRR as "$2,600" (whole dollars; cents only below $10); none as a dash."""
    if value is None:
        return "–"
    size = round(abs(value), 2)
    if size == 0:
        return "$0"
    text = f"{size:,.2f}" if size < 10 and size != int(size) else f"{round(size):,}"
    return ("−" if value < 0 else "") + "$" + text


def share(value: float | None, digits: int = 0) -> str:
    """A share (0.254) as a percentage ("25%"), never "-0%"."""
    return "–" if value is None else number(value * 100, digits) + "%"


def count(n: int | None, noun: str, plural: str | None = None) -> str:
    """ "1 seat", "3 seats", "1,200 accounts"."""
    if n is None:
        return f"? {plural or noun + 's'}"
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def words(name: str | None) -> str:
    """An enum or signal name as words: "engagement_drop" -> "Engagement drop",
    "nps_detractor" -> "NPS detractor"."""
    if not name:
        return "–"
    parts = [_UPPER.get(p, p) for p in str(name).replace("-", "_").split("_") if p]
    text = " ".join(parts)
    return text[:1].upper() + text[1:]
