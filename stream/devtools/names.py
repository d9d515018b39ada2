"""Made-up company names and CSM owners for simulated accounts.

A CS team works its book by name and owner, so the simulated logs carry both (as the
optional ``account_name`` and ``owner`` event attributes). Both are a pure function of the
account id, drawn from no random generator, so adding them left every other byte of a seeded
log as it was.
"""

from __future__ import annotations

import zlib

_FIRST = ("Acme", "Blue", "Cedar", "Delta", "Echo", "Fern", "Granite", "Harbor", "Iris",
          "Juniper", "Kite", "Lumen", "Maple", "Nova", "Orbit", "Pine", "Quartz", "River",
          "Summit", "Tidal", "Umber", "Vista", "Willow", "Zephyr")  # fmt: skip
_SECOND = ("Analytics", "Bakery", "Clinics", "Dental", "Freight", "Health", "Labs",
           "Logistics", "Media", "Motors", "Partners", "Robotics", "Studios", "Systems",
           "Travel", "Works")  # fmt: skip
_SUFFIX = ("Inc", "Ltd", "GmbH", "LLC", "Co", "SA")

OWNERS: dict[str, tuple[str, ...]] = {
    "enterprise": ("Dana Okafor", "Miguel Ortega"),
    "pro": ("Priya Shah", "Tom Becker", "Aiko Tanaka"),
    "starter": ("Digital CS team",),
}
"""CSMs per plan: enterprise and pro accounts have named CSMs, starters a pooled team
(the tech-touch model of the domain notes)."""


def _hash(account_id: str) -> int:
    return zlib.crc32(account_id.encode())


def company_name(account_id: str) -> str:
    h = _hash(account_id)
    first = _FIRST[h % len(_FIRST)]
    second = _SECOND[(h // len(_FIRST)) % len(_SECOND)]
    suffix = _SUFFIX[(h // (len(_FIRST) * len(_SECOND))) % len(_SUFFIX)]
    return f"{first} {second} {suffix}"


def owner_for(account_id: str, plan: str) -> str:
    book = OWNERS.get(plan, OWNERS["starter"])
    return book[(_hash(account_id) >> 8) % len(book)]
