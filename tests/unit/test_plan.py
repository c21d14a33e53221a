"""Planning rules: what happens to each recipient of a request, at a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from campaigns.plan import Lookups, Plan, UserPolicy, plan_send
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from sms.encoding import is_gsm7

PARIS = ZoneInfo("Europe/Paris")
SHORTCODE = "36105"
MOBILE = "+33612345678"
OTHER_MOBILE = "+33698765432"
#: A Tuesday morning, no public holiday: inside the marketing window.
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
SUNDAY = datetime(2026, 11, 29, 15, 0, tzinfo=PARIS)
ALICE = UserPolicy(email="alice@example.com", test_number="+33611223344")


def plan(
    text: str = "Réunion demain à 9h",
    recipients: list[str] | None = None,
    *,
    policy: UserPolicy = ALICE,
    compliance: ComplianceConfig | None = None,
    lookups: Lookups | None = None,
    now: datetime = TUESDAY,
    **request: Any,
) -> Plan:
    req = SendRequest(user=policy.email, text=text,
                      recipients=[MOBILE] if recipients is None else recipients, **request)
    return plan_send(req, policy=policy, compliance=compliance or ComplianceConfig(),
                     shortcode=SHORTCODE, lookups=lookups or Lookups(), now=now)


def only(result: Plan) -> Any:
    assert result.refused is None, result.refused
    assert len(result.messages) == 1, result.messages
    return result.messages[0]


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Paris, as the aware UTC datetime plans hold."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


# --- recipients --------------------------------------------------------------------


def test_one_number_in_several_notations_is_one_sms_with_a_duplicate_notice() -> None:
    result = plan(recipients=["06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678",
                              "6.12.34.56.78", "+33612345678"])
    message = only(result)
    assert message.to == MOBILE
    assert message.status == "queued" and message.reason is None
    assert any("duplicate" in n and "4" in n for n in result.notices), result.notices


def test_invalid_and_landline_numbers_are_skipped_with_their_reason() -> None:
    result = plan(recipients=["06 12 34 56 78", "12", "01 42 68 53 00", "pas un numéro"])
    by_raw = {m.raw: m for m in result.messages}
    assert by_raw["06 12 34 56 78"].status == "queued"
    assert by_raw["12"].status == "skipped"
    assert by_raw["12"].reason == "invalid number"
    assert by_raw["12"].to == "12"  # kept as written, for the report
    assert by_raw["pas un numéro"].status == "skipped"
    assert by_raw["pas un numéro"].reason == "invalid number"
    landline = by_raw["01 42 68 53 00"]
    assert landline.status == "skipped"
    assert landline.to == "+33142685300"
    assert "landline" in (landline.reason or "")


def test_landlines_are_sent_when_the_config_allows_them() -> None:
    message = only(plan(recipients=["01 42 68 53 00"],
                        compliance=ComplianceConfig(allow_landlines=True)))
    assert message.status == "queued" and message.to == "+33142685300"


def test_opted_out_number_is_skipped_and_the_others_still_go() -> None:
    result = plan(recipients=[MOBILE, OTHER_MOBILE], lookups=Lookups(opted_out={MOBILE}))
    by_to = {m.to: m for m in result.messages}
    assert by_to[MOBILE].status == "skipped"
    assert by_to[MOBILE].reason == "opted out"
    assert by_to[OTHER_MOBILE].status == "queued"


def test_group_members_get_their_own_fields_and_an_unknown_group_is_mentioned() -> None:
    members = {"Staff": [("06 12 34 56 78", {"first_name": "Léa"}),
                         ("+33 6 98 76 54 32", {"first_name": "Karim"})]}
    result = plan("Bonjour {{ first_name }}", recipients=[], groups=["Staff", "Nobody"],
                  lookups=Lookups(group_members=members.get))
    assert [(m.to, m.status, m.text) for m in result.messages] == [
        (MOBILE, "queued", "Bonjour Léa"),
        (OTHER_MOBILE, "queued", "Bonjour Karim"),
    ]
    assert any("#Nobody" in n for n in result.notices), result.notices


# --- volume rules ------------------------------------------------------------------


@pytest.mark.parametrize(("already_sent", "status"), [(0, "queued"), (49, "queued"),
                                                      (50, "refused"), (80, "refused")])
def test_more_than_50_sms_a_day_to_one_number_is_refused(already_sent: int, status: str) -> None:
    message = only(plan(lookups=Lookups(sent_today={MOBILE: already_sent})))
    assert message.status == status
    if status == "refused":
        assert "spam rule" in (message.reason or "")
        assert "50" in (message.reason or "")
    else:
        assert message.reason is None


def test_the_spam_rule_follows_compliance_max_per_number_per_day() -> None:
    compliance = ComplianceConfig(max_per_number_per_day=3)
    assert only(plan(compliance=compliance,
                     lookups=Lookups(sent_today={MOBILE: 2}))).status == "queued"
    assert only(plan(compliance=compliance,
                     lookups=Lookups(sent_today={MOBILE: 3}))).status == "refused"


def test_user_daily_limit_reached_skips_with_daily_cap() -> None:
    policy = UserPolicy(email="alice@example.com", daily_limit=10)
    message = only(plan(policy=policy, lookups=Lookups(user_sent_today=10)))
    assert message.status == "skipped"
    assert "daily cap" in (message.reason or "")


def test_user_daily_limit_counts_the_messages_of_this_request_too() -> None:
    policy = UserPolicy(email="alice@example.com", daily_limit=3)
    numbers = ["+33612345671", "+33612345672", "+33612345673", "+33612345674"]
    result = plan(recipients=numbers, policy=policy, lookups=Lookups(user_sent_today=1))
    assert [m.status for m in result.messages] == ["queued", "queued", "skipped", "skipped"]
    assert all("daily cap" in (m.reason or "") for m in result.messages[2:])


# --- timing ------------------------------------------------------------------------


def test_marketing_on_a_sunday_is_deferred_to_monday_8am_and_the_sender_is_told() -> None:
    result = plan(recipients=[MOBILE, OTHER_MOBILE], category="marketing", now=SUNDAY)
    monday_8 = utc(2026, 11, 30, 8)
    assert result.refused is None
    assert [m.status for m in result.messages] == ["deferred", "deferred"]
    assert all(m.not_before == monday_8 for m in result.messages)
    assert result.not_before == monday_8
    assert result.not_before is not None and result.not_before.utcoffset() == timedelta(0)
    assert any("deferred to 2026-11-30 08:00" in n for n in result.notices), result.notices


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2026, 12, 25, 11, 0, tzinfo=PARIS), utc(2026, 12, 26, 8)),  # Christmas
    (datetime(2026, 11, 28, 20, 0, tzinfo=PARIS), utc(2026, 11, 30, 8)),  # Saturday 20:00
    (datetime(2026, 11, 24, 6, 30, tzinfo=PARIS), utc(2026, 11, 24, 8)),  # before 08:00
    (datetime(2026, 7, 14, 9, 0, tzinfo=PARIS), utc(2026, 7, 15, 8)),  # 14 July
], ids=["christmas", "saturday-evening", "early-morning", "bastille-day"])
def test_marketing_outside_the_window_goes_at_its_next_opening(
    now: datetime, expected: datetime
) -> None:
    message = only(plan(category="marketing", now=now))
    assert message.status == "deferred"
    assert message.not_before == expected


def test_marketing_inside_the_window_is_queued_now() -> None:
    result = plan(category="marketing", now=TUESDAY)
    assert only(result).status == "queued"
    assert result.not_before is None
    assert not any("deferred" in n for n in result.notices)


def test_an_alert_on_a_sunday_goes_now() -> None:
    result = plan(category="alert", now=SUNDAY)
    message = only(result)
    assert message.status == "queued"
    assert message.not_before is None and result.not_before is None
    assert result.notices == []


def test_user_default_category_marketing_applies_the_window() -> None:
    policy = UserPolicy(email="shop@example.com", category="marketing")
    assert only(plan(policy=policy, now=SUNDAY)).status == "deferred"


def test_at_in_the_future_defers_to_that_time() -> None:
    at = datetime(2026, 11, 26, 9, 30, tzinfo=PARIS)
    result = plan(at=at)
    message = only(result)
    assert message.status == "deferred"
    assert message.not_before == at.astimezone(UTC)
    assert result.not_before == at.astimezone(UTC)


def test_at_in_the_past_is_sent_now_with_a_notice() -> None:
    result = plan(at=TUESDAY - timedelta(hours=3))
    message = only(result)
    assert message.status == "queued" and message.not_before is None
    assert any("in the past" in n and "[at:" in n for n in result.notices), result.notices


def test_marketing_at_a_sunday_time_is_moved_to_the_next_opening() -> None:
    message = only(plan(category="marketing", at=SUNDAY, now=TUESDAY))
    assert message.status == "deferred"
    assert message.not_before == utc(2026, 11, 30, 8)


# --- sender and STOP mention --------------------------------------------------------


def test_marketing_from_a_custom_sender_carries_the_stop_mention_counted_in_segments() -> None:
    text = ("Soldes d'hiver : -30% sur tout le magasin ce samedi. " * 3)[:150]
    assert len(text) == 150
    plain = only(plan(text, category="marketing", sender=SHORTCODE))
    assert plain.text == text
    assert plain.segments == 1
    assert plain.sender == SHORTCODE
    custom = only(plan(text, category="marketing", sender="ACME"))
    assert custom.sender == "ACME"
    assert custom.text.startswith(text.rstrip())
    assert custom.text.endswith("STOP au 36105")
    assert custom.segments == 2  # the mention pushed it past 160 characters


def test_the_users_own_sender_is_custom_too() -> None:
    policy = UserPolicy(email="shop@example.com", sender="BOUTIQUE")
    message = only(plan("Promo demain", policy=policy, category="marketing"))
    assert message.sender == "BOUTIQUE"
    assert message.text.endswith("STOP au 36105")


def test_an_alert_from_a_custom_sender_has_no_stop_mention() -> None:
    message = only(plan("Coupure d'eau demain", category="alert", sender="MAIRIE"))
    assert message.text == "Coupure d'eau demain"


def test_a_text_that_already_has_a_stop_line_gets_no_second_one() -> None:
    text = "Promo -20% demain. STOP au 36105"
    assert only(plan(text, category="marketing", sender="ACME")).text == text


@pytest.mark.parametrize("sender", ["A", "TOO-LONG-SENDER", "ABCDEFGHIJKL", "12", "FÊTE"])
def test_an_invalid_sender_id_refuses_the_whole_request(sender: str) -> None:
    result = plan(recipients=[MOBILE, OTHER_MOBILE], sender=sender)
    assert result.refused is not None
    assert repr(sender) in result.refused
    assert "not valid" in result.refused
    assert result.messages == []


# --- [test] --------------------------------------------------------------------------


def test_test_send_goes_only_to_the_users_test_number() -> None:
    result = plan(recipients=[MOBILE, OTHER_MOBILE], test=True)
    message = only(result)
    assert message.to == "+33611223344"
    assert message.status == "queued"
    assert any("test" in n for n in result.notices)


def test_test_send_is_refused_without_a_test_number() -> None:
    result = plan(test=True, policy=UserPolicy(email="bob@example.com"))
    assert result.refused is not None and "test number" in result.refused
    assert result.messages == []


# --- templates -------------------------------------------------------------------------


def test_template_injection_refuses_the_request() -> None:
    result = plan("{{ ''.__class__.__mro__ }}", recipients=[MOBILE, OTHER_MOBILE])
    assert result.refused is not None and "not allowed" in result.refused
    assert result.messages == []


def test_template_syntax_error_refuses_the_request() -> None:
    result = plan("Bonjour {{ first_name ")
    assert result.refused is not None and "template" in result.refused


def test_a_missing_field_skips_that_message_with_the_field_named() -> None:
    message = plan("Bonjour {{ first_name }}").messages[0]
    assert message.status == "skipped"
    assert "first_name" in (message.reason or "")


def test_a_default_value_fills_a_missing_field() -> None:
    message = only(plan('Bonjour {{ first_name|default("client") }}, votre colis est arrivé.'))
    assert message.status == "queued"
    assert message.text == "Bonjour client, votre colis est arrivé."


# --- length and encoding ----------------------------------------------------------------


def test_a_text_over_max_segments_is_not_sent_and_says_too_long() -> None:
    result = plan("x" * (153 * 10 + 1), recipients=[MOBILE, OTHER_MOBILE])
    assert all(m.status == "skipped" and "too long" in (m.reason or "")
               for m in result.messages)
    assert result.refused is not None and "too long" in result.refused
    # exactly max_segments parts is fine
    assert only(plan("x" * (153 * 10))).segments == 10


def test_max_segments_comes_from_the_config() -> None:
    result = plan("y" * 400, compliance=ComplianceConfig(max_segments=2))
    assert result.messages[0].status == "skipped"
    assert "too long" in (result.messages[0].reason or "")


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("a" * 160, "gsm7", 1),
    ("a" * 161, "gsm7", 2),
    ("€" * 80, "gsm7", 1),  # € counts two septets
    ("€" * 81, "gsm7", 2),
    ("ê" * 70, "ucs2", 1),
    ("ê" * 71, "ucs2", 2),
    ("😊" * 35, "ucs2", 1),  # an emoji counts two
    ("😊" * 36, "ucs2", 2),
    ("Joyeux anniversaire ! 🎂🎉 À ce soir 😊", "ucs2", 1),
])
def test_encoding_and_segments(text: str, encoding: str, segments: int) -> None:
    message = only(plan(text))
    assert (message.encoding, message.segments) == (encoding, segments)


def test_transliteration_keeps_french_text_in_gsm7() -> None:
    text = "Réunion à 9h — l’équipe"
    assert only(plan(text)).encoding == "ucs2"
    message = only(plan(text, compliance=ComplianceConfig(transliterate=True)))
    assert message.encoding == "gsm7"
    assert message.segments == 1
    assert is_gsm7(message.text)
    assert message.text.startswith("Réunion à 9h")
    assert "’" not in message.text and "—" not in message.text
    assert "l'équipe" in message.text
