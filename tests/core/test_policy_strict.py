"""Policy switches are TOML booleans: ``"off"``, ``"yes"``, ``0`` and ``0.0`` are refused.

Pydantic's lax mode read them as booleans, so ``enabled = "off"`` turned a detector off and
``enabled = 0.0`` did too, without a word. Every layer of the file is checked, and the error
names the key.
"""

from __future__ import annotations

import pytest

from stream.core.policy import PolicyError, load_policy


def _load(tmp_path, text: str):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return load_policy(path)


def test_toml_true_and_false_still_load(tmp_path):
    policy = _load(
        tmp_path,
        "[defaults.nps_detractor]\nalert_mild = true\n"
        "[stages.onboarding.danger_zone]\nenabled = false\n"
        "[segments.pro.engagement_drop]\nenabled = false\n"
        "[segments.pro.stages.established.engagement_drop]\nenabled = true\n",
    )
    assert policy.thresholds("default", "established").nps_detractor.alert_mild is True
    assert policy.thresholds("default", "onboarding").danger_zone.enabled is False
    assert policy.thresholds("pro", "onboarding").engagement_drop.enabled is False
    assert policy.thresholds("pro", "established").engagement_drop.enabled is True


@pytest.mark.parametrize("value", ['"yes"', '"off"', '"true"', "0", "1", "0.0"])
@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("defaults.engagement_drop", "enabled"),
        ("defaults.nps_detractor", "alert_mild"),
        ("stages.onboarding.danger_zone", "enabled"),
        ("segments.pro.footprint_shrink", "enabled"),
        ("segments.pro.stages.onboarding.onboarding_stall", "enabled"),
    ],
)
def test_a_switch_that_is_not_a_boolean_is_refused_naming_its_key(tmp_path, table, key, value):
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, f"[{table}]\n{key} = {value}\n")
    message = str(caught.value)
    assert f"invalid policy: {table}.{key}: expected true or false (unquoted), got " in message
    assert "\n" not in message


def test_every_loose_switch_in_a_layer_is_listed(tmp_path):
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, '[defaults.engagement_drop]\nenabled = "no"\n'
                        "[defaults.danger_zone]\nenabled = 0\n")  # fmt: skip
    problems = str(caught.value).split("; ")
    expected = "expected true or false (unquoted), got"
    assert problems[0].endswith(f"defaults.engagement_drop.enabled: {expected} 'no'")
    assert problems[1] == f"defaults.danger_zone.enabled: {expected} 0"


def test_numbers_keep_their_own_checks(tmp_path):
    # The switch check leaves every other key to the model: ranges and unknown keys still speak.
    with pytest.raises(PolicyError, match=r"defaults\.engagement_drop\.max_opens: Input should be"):
        _load(tmp_path, "[defaults.engagement_drop]\nmax_opens = 0\n")
    with pytest.raises(PolicyError, match="unknown key"):
        _load(tmp_path, "[defaults.engagement_drop]\nenable = true\n")
