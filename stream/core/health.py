"""Health per dimension and overall, from the risks the detectors last recorded.

Overall health follows the worst dimension (a poor dimension makes a poor account), as the CS
platforms do, instead of averaging a billing emergency away behind good usage.
"""

from __future__ import annotations

from schemas.alerts import DIMENSIONS, Health, HealthStatus
from stream.core.signals import registry


def dimension_scores(risk: bytes | bytearray) -> dict[str, int]:
    """``risk`` holds one byte per signal, in registry order."""
    worst = dict.fromkeys(DIMENSIONS, 0)
    for dim, value in zip(registry.active.dimension_of.values(), risk, strict=True):
        if value > worst[dim]:
            worst[dim] = value
    return {dim: 100 - value for dim, value in worst.items()}


def status_of(score: int) -> HealthStatus:
    if score >= 75:
        return "healthy"
    if score >= 50:
        return "watch"
    if score > 25:
        return "at_risk"
    return "critical"


def health(risk: bytes | bytearray) -> Health:
    scores = dimension_scores(risk)
    overall = min(scores.values())
    return Health(overall=overall, status=status_of(overall), **scores)
