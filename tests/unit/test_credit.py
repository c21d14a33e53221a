"""Credit in segments: refused whole when short, taken at queue time, given back once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from campaigns.plan import UserPolicy
from campaigns.queue import prepare, queue_request
from campaigns.request import SendRequest
from gateway.dlr import from_kannel, record_dlr
from mail2sms.cli_credit import config_warnings
from mail2sms.config import CreditConfig, parse_config
from mail2sms.report import credit_alert, plan_report
from sms.config import ComplianceConfig
from store import credit, queries, sends
from store.db import Database
from store.models import CreditEntry, Message, MessageStatus, SendRequestRow

POLICY = UserPolicy(email="alice@example.com")
COMPLIANCE = ComplianceConfig()
LONG = "x" * 200  # two GSM-7 segments


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'credit.db'}")
    yield database
    database.close()


def request(*numbers: str, text: str = "Bonjour", draft: bool = False) -> SendRequest:
    return SendRequest(user="alice@example.com", text=text, recipients=list(numbers),
                       source="cli", draft=draft)


def queue(db: Database, req: SendRequest, *, enabled: bool = True):  # type: ignore[no-untyped-def]
    return db.run_sync(lambda s: queue_request(
        s, req, policy=POLICY, compliance=COMPLIANCE, shortcode="36105",
        credit_enabled=enabled))


def rows(db: Database) -> list[Message]:
    return db.run_sync(lambda s: list(s.exec(select(Message).order_by(Message.id))))


def balance(db: Database) -> int | None:
    return db.run_sync(credit.balance)


def test_a_send_takes_its_segments_and_marks_its_messages(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 10, by="admin"))
    plan, request_id = queue(db, request("0612345678", "0751223344", text=LONG))
    assert plan.refused is None
    assert plan.credit_left == 6
    assert balance(db) == 6
    assert [(m.segments, m.charged) for m in rows(db)] == [(2, True), (2, True)]
    entries = db.run_sync(credit.history)
    assert [(e.change, e.balance, e.reason, e.request_id) for e in entries] == [
        (-4, 6, "send", request_id), (10, 10, "topup", None)]


def test_a_send_larger_than_the_credit_is_refused_whole_with_the_numbers(
    db: Database,
) -> None:
    db.run_sync(lambda s: credit.add(s, 3))
    plan, request_id = queue(db, request("0612345678", "0751223344", text=LONG))
    assert plan.refused == "not enough credit: this send needs 4 segments and 3 are left"
    assert rows(db) == []  # no partial send
    assert balance(db) == 3
    row = db.run_sync(lambda s: s.get(SendRequestRow, request_id))
    assert row is not None and row.status == "refused" and row.reason == plan.refused


def test_thousands_are_written_with_separators(db: Database) -> None:
    db.run_sync(lambda s: credit.set_balance(s, 800))
    numbers = [f"+336{n:08d}" for n in range(620)]
    plan, _ = queue(db, request(*numbers, text=LONG))
    assert plan.refused == "not enough credit: this send needs 1,240 segments and 800 are left"


def test_no_balance_yet_counts_as_zero_and_says_how_to_add(db: Database) -> None:
    plan, _ = queue(db, request("0612345678"))
    assert plan.refused is not None
    assert "needs 1 segment and 0 are left" in plan.refused
    assert "mail2sms credit add N" in plan.refused
    assert rows(db) == []


def test_credit_off_takes_nothing(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 1))
    plan, _ = queue(db, request("0612345678", "0751223344"), enabled=False)
    assert plan.refused is None and plan.credit_left is None
    assert balance(db) == 1
    assert not any(m.charged for m in rows(db))


def test_skipped_messages_are_not_charged(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 5))
    plan, _ = queue(db, request("0612345678", "12", "0142000000"))
    assert [m.status for m in plan.messages].count(MessageStatus.SKIPPED) == 2
    assert balance(db) == 4
    assert [m.charged for m in rows(db)] == [True, False, False]


def test_only_skipped_numbers_need_no_credit(db: Database) -> None:
    plan, _ = queue(db, request("12"))
    assert plan.refused is None  # nothing to send: nothing to pay
    assert balance(db) is None


def test_the_dry_run_shows_the_refusal_and_reserves_nothing(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 1))
    plan = db.run_sync(lambda s: prepare(
        s, request("0612345678", "0751223344"), policy=POLICY, compliance=COMPLIANCE,
        shortcode="36105", credit_enabled=True))
    assert plan.refused == "not enough credit: this send needs 2 segments and 1 is left"
    assert len(plan.messages) == 2  # still shown per recipient
    ok = db.run_sync(lambda s: prepare(
        s, request("0612345678"), policy=POLICY, compliance=COMPLIANCE, shortcode="36105",
        credit_enabled=True))
    assert ok.refused is None and ok.credit_left == 0
    assert balance(db) == 1
    assert db.run_sync(lambda s: list(s.exec(select(SendRequestRow)))) == []


def test_a_draft_is_charged_when_queued(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 5))
    queue(db, request("0612345678", "0751223344", draft=True))
    assert balance(db) == 3
    assert [(m.status, m.charged) for m in rows(db)] == [("paused", True), ("paused", True)]


def _submitted(db: Database) -> list[int]:
    """Claim every queued message as the dispatcher does; their ids."""
    claimed = db.run_sync(lambda s: queries.claim_due(s, "me", 100, timedelta(minutes=5)))
    return [m.id or 0 for m in claimed]


async def test_a_failure_reported_twice_is_given_back_once(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 10))
    queue(db, request("0612345678", text=LONG))
    [mid] = _submitted(db)
    assert balance(db) == 8
    db.run_sync(lambda s: queries.record_failures(s, [(mid, "invalid number")]))
    assert balance(db) == 10
    # Kannel also reports the same refusal as a DLR: nothing more is given back
    await record_dlr(db, from_kannel(16, "NACK/0x00000045/Submit failed"), message_id=mid)
    await record_dlr(db, from_kannel(2, "stat:UNDELIV err:000"), message_id=mid)
    assert balance(db) == 10
    reasons = [e.reason for e in db.run_sync(credit.history)]
    assert reasons.count("failed") == 1


async def test_a_failed_dlr_gives_back_and_a_later_gateway_failure_does_not(
    db: Database,
) -> None:
    db.run_sync(lambda s: credit.add(s, 10))
    queue(db, request("0612345678", text=LONG))
    [mid] = _submitted(db)
    await record_dlr(db, from_kannel(16, "NACK/0x00000045/Submit failed"), message_id=mid)
    assert balance(db) == 10
    db.run_sync(lambda s: queries.record_failures(s, [(mid, "late answer")]))
    assert balance(db) == 10
    assert not rows(db)[0].charged


async def test_delivered_expired_and_gateway_failures_after_delivery_keep_the_charge(
    db: Database,
) -> None:
    db.run_sync(lambda s: credit.add(s, 10))
    queue(db, request("0612345678", "0751223344"))
    first, second = _submitted(db)
    await record_dlr(db, from_kannel(1, "stat:DELIVRD"), message_id=first)
    await record_dlr(db, from_kannel(2, "stat:EXPIRED err:000"), message_id=second)
    # a gateway failure arriving after the delivery report settles nothing
    db.run_sync(lambda s: queries.record_failures(s, [(first, "late 500")]))
    assert balance(db) == 8
    assert [m.status for m in rows(db)] == ["delivered", "expired"]


def test_cancel_gives_back_what_was_not_sent(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 10))
    _, request_id = queue(db, request("0612345678", "0751223344", "0751223355"))
    second = rows(db)[1].id
    # one message is already with the gateway: it keeps its charge
    db.run_sync(lambda s: s.execute(
        update(Message).where(col(Message.id) == second).values(status="submitted")))
    db.run_sync(lambda s: sends.cancel(s, request_id, "cancelled by admin"))
    assert balance(db) == 9
    assert [m.status for m in rows(db)] == ["cancelled", "submitted", "cancelled"]
    entries = db.run_sync(lambda s: list(s.exec(
        select(CreditEntry).where(CreditEntry.reason == "cancelled"))))
    assert [(e.change, e.request_id) for e in entries] == [(2, request_id)]


def test_restore_gives_back_only_charged_messages_in_the_statuses_asked(
    db: Database,
) -> None:
    db.run_sync(lambda s: credit.add(s, 10))
    queue(db, request("0612345678", "0751223344"))
    ids = [m.id or 0 for m in rows(db)]
    given = db.run_sync(lambda s: credit.restore(s, ids, reason="failed",
                                                 statuses=("failed",)))
    assert given == 0  # they are queued, not failed
    assert db.run_sync(lambda s: credit.restore(s, ids, reason="failed")) == 2
    assert db.run_sync(lambda s: credit.restore(s, ids, reason="failed")) == 0
    assert balance(db) == 10


def test_two_reservations_cannot_spend_the_same_credit(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 5))
    assert db.run_sync(lambda s: credit.reserve(s, 3)) == 2
    assert db.run_sync(lambda s: credit.reserve(s, 3)) is None
    assert balance(db) == 2


def test_the_alert_is_claimed_once_until_a_top_up(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 20))
    assert db.run_sync(lambda s: credit.claim_alert(s, 10)) is None  # not under yet
    db.run_sync(lambda s: credit.reserve(s, 15))
    assert db.run_sync(lambda s: credit.claim_alert(s, 10)) == 5
    assert db.run_sync(lambda s: credit.claim_alert(s, 10)) is None
    db.run_sync(lambda s: credit.add(s, 1))
    assert db.run_sync(lambda s: credit.claim_alert(s, 10)) == 6


def test_the_report_shows_what_was_taken_and_what_is_left(db: Database) -> None:
    db.run_sync(lambda s: credit.add(s, 100))
    plan, request_id = queue(db, request("0612345678", text=LONG))
    body = plan_report(plan, request_id=request_id, sender_addr="sms@sms.example.com",
                       to="alice@example.com", timezone="Europe/Paris").get_payload(decode=True)
    assert b"Credit: 2 segment(s) taken, 98 left." in body
    refused, _ = queue(db, request(*[f"+3375{n:07d}" for n in range(60)], text=LONG))
    body = plan_report(refused, request_id=None, sender_addr="sms@sms.example.com",
                       to="alice@example.com", timezone="Europe/Paris").get_payload(decode=True)
    assert b"NOT sent" in body
    assert b"this send needs 120 segments and 98 are left" in body


def test_the_alert_email_says_balance_threshold_and_how_to_top_up() -> None:
    mail = credit_alert(left=42, threshold=100, to=["ops@example.com", "boss@example.com"],
                        sender_addr="sms@sms.example.com", timezone="Europe/Paris")
    assert mail["To"] == "ops@example.com, boss@example.com"
    body = mail.get_payload(decode=True)
    assert b"42 segment(s) left" in body and b"threshold of 100" in body
    assert b"mail2sms credit add" in body


def test_config_defaults_and_warnings(tmp_path: Path) -> None:
    assert parse_config({}).credit == CreditConfig(enabled=False, alert_below=None,
                                                   alert_to=[])
    path = tmp_path / "config.yaml"
    path.write_text("rules: null\ncredit:\n  enabled: true\n  alert_below: 100\n")
    cfg = parse_config({"credit": {"enabled": True, "alert_below": 100}})
    assert config_warnings(cfg, path) == [
        f"{path}:4: credit.alert_below: no alert will be sent: alert_to is empty"]
    assert config_warnings(parse_config({"credit": {"enabled": True}}), path) == []


def test_the_report_shows_the_cost_when_a_price_is_set(db: Database) -> None:
    priced = CreditConfig(price_per_segment=0.045, currency="EUR")
    plan, request_id = queue(db, request("0612345678", "0698765432", text=LONG), enabled=False)
    body = plan_report(plan, request_id=request_id, sender_addr="sms@sms.example.com",
                       to="alice@example.com", timezone="Europe/Paris",
                       cost=priced.cost).get_payload(decode=True).decode()
    assert "Cost: 0.18 EUR (4 segment(s))." in body
    unpriced = plan_report(plan, request_id=request_id, sender_addr="sms@sms.example.com",
                           to="alice@example.com", timezone="Europe/Paris",
                           cost=CreditConfig().cost).get_payload(decode=True).decode()
    assert "Cost:" not in unpriced
