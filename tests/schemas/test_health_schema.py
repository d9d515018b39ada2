"""The account-health snapshot's published JSON Schema, and the core's payloads against it."""

from __future__ import annotations

import orjson

from schemas.health import HEALTH_SCHEMA_PATH, AccountHealth, health_json_schema_text


def test_checked_in_schema_matches_the_model():
    published = HEALTH_SCHEMA_PATH.read_text(encoding="utf-8")
    assert published == health_json_schema_text(), (
        "schemas/health.schema.json is stale: run "
        "`churnwatch schema --kind health --write` and review the diff"
    )


def test_schema_is_closed_and_requires_the_fields_the_read_model_uses():
    schema = orjson.loads(HEALTH_SCHEMA_PATH.read_bytes())
    assert schema["additionalProperties"] is False
    for name in ("account_id", "day", "health", "status", "owner", "renewal_date", "metrics",
                 "activity", "risk_estimate"):  # fmt: skip
        assert name in schema["required"]
    assert set(AccountHealth.model_fields) == set(schema["properties"])
