"""Policy files: defaults, layered overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.core.policy import PolicyError, dump_policy_toml, load_policy, parse_policy

EXAMPLE = Path(__file__).parents[2] / "examples" / "policy.toml"


def test_built_in_policy_is_valid_and_has_an_onboarding_line():
    policy = load_policy(None)
    assert policy.thresholds("default", "established").danger_zone.line == 0.6
    assert policy.thresholds("default", "onboarding").danger_zone.line == 0.4
    assert policy.thresholds("unheard-of", "onboarding").danger_zone.line == 0.4


def test_one_episode_per_account_is_the_default_and_per_signal_a_switch_away(tmp_path):
    assert load_policy(None).alerting.episodes == "account"
    assert load_policy(EXAMPLE).alerting.per_account
    path = tmp_path / "per-signal.toml"
    path.write_text('[alerting]\nepisodes = "signal"\n')
    policy = load_policy(path)
    assert policy.alerting.episodes == "signal" and not policy.alerting.per_account
    assert '[alerting]\nepisodes = "signal"' in dump_policy_toml(policy)


def test_overrides_layer_defaults_stage_segment_and_segment_stage():
    policy = load_policy(EXAMPLE)
    assert policy.thresholds("enterprise", "established").danger_zone.line == 0.45
    assert policy.thresholds("enterprise", "onboarding").danger_zone.line == 0.3
    assert policy.thresholds("pro", "onboarding").danger_zone.line == 0.4
    assert policy.thresholds("enterprise", "onboarding").footprint_shrink.ratio_medium == 0.25
    assert not policy.thresholds("starter", "established").time_in_product_drop.enabled
    assert policy.thresholds("pro", "established").time_in_product_drop.enabled


def test_shown_policy_loads_back_unchanged(tmp_path):
    policy = load_policy(EXAMPLE)
    path = tmp_path / "round.toml"
    path.write_text(dump_policy_toml(policy))
    again = load_policy(path)
    assert again == policy
    for segment in ("enterprise", "starter", "x"):
        for stage in ("onboarding", "established"):
            assert again.thresholds(segment, stage) == policy.thresholds(segment, stage)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"defaults": {"engagement_drop": {"drop_pc": 0.3}}},
            "defaults.engagement_drop.drop_pc: unknown key",
        ),
        (
            {"segments": {"pro": {"danger_zone": {"lin": 1}}}},
            "segments.pro.danger_zone.lin: unknown key (did you mean 'line'?)",
        ),
        (
            {"defaults": {"engagement_drop": {"drop_medium": 2}}},
            "defaults.engagement_drop.drop_medium: Input should be less than or equal to 1",
        ),
        (
            {"segments": {"pro": {"engagement_drop": {"drop_high": 0.3}}}},
            "segments.pro.engagement_drop: needs clear_below < drop_medium <= drop_high",
        ),
        ({"stages": {"trial": {}}}, "stages.trial: unknown key; expected one of onboarding"),
        ({"segments": {"pro": {"stages": {"trial": {}}}}}, "segments.pro.stages.trial"),
        ({"stream": {"allowed_lateness_seconds": -1}}, "stream.allowed_lateness_seconds"),
        (
            {"alerting": {"episodes": "per-account"}},
            "alerting.episodes: Input should be 'account' or 'signal'",
        ),
        (
            {"alerting": {"episode": "signal"}},
            "alerting.episode: unknown key (did you mean 'episodes'?)",
        ),
        ({"segments": {"pro": 5}}, "segments.pro: Input should be a valid dictionary"),
        (
            {"defaults": {"support_silence": {"window_days": 60, "baseline_days": 70}}},
            "must fit the 120-day history",
        ),
    ],
)
def test_bad_policies_name_the_key_and_the_problem(doc, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc, "policy.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("policy.toml: ")


def test_unreadable_and_malformed_files_give_clear_errors(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[defaults\nline = 1\n")
    with pytest.raises(PolicyError, match=r"broken.toml: not valid TOML: .*line 1"):
        load_policy(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(binary)
