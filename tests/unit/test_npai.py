"""NPAI: numbers reported unassigned twice in a row are flagged, skipped, then cleared."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.plan import NPAI_REASON, UserPolicy
from campaigns.queue import prepare
from campaigns.request import SendRequest
from gateway.config import UNASSIGNED_ERRORS, GatewayConfig
from gateway.dlr import from_generic, from_kannel, record_dlr
from sms.config import ComplianceConfig
from store import npai, queries
from store.db import Database
from store.models import Message, MessageStatus, SendRequestRow

NUMBER = "+33612345678"


@pytest.mark.parametrize("answer", [
    "NACK/0x0000000b/Invalid Destination Address",
    "id:42 sub:001 dlvrd:000 submit date:2612011200 done date:2612011200 stat:UNDELIV "
    "err:001 text:Bonjour",
    "Unknown Subscriber",
    "UNASSIGNED number",
])
def test_unassigned_answers(answer: str) -> None:
    for code in (2, 16):
        update = from_kannel(code, answer)
        assert update.status == MessageStatus.FAILED
        assert update.unassigned == " ".join(answer.split())


@pytest.mark.parametrize(("code", "answer"), [
    (2, "stat:UNDELIV err:000 absent subscriber"),  # a phone switched off
    (16, "NACK/0x00000045/Submit failed"),
    (2, None),
    (1, "stat:DELIVRD err:001"),  # delivered whatever its text says
    (2, "stat:EXPIRED err:001"),  # expired: the phone was off, not unassigned
])
def test_other_answers_are_not_unassigned(code: int, answer: str | None) -> None:
    assert from_kannel(code, answer).unassigned is None


def test_the_list_of_texts_is_configurable() -> None:
    assert GatewayConfig().unassigned_errors == list(UNASSIGNED_ERRORS)
    assert "absent subscriber" not in UNASSIGNED_ERRORS
    assert from_kannel(2, "ERR 21: no such line", ["no such LINE"]).unassigned is not None
    assert from_kannel(2, "unknown subscriber", ["no such line"]).unassigned is None


def test_generic_reports_carry_the_error_text() -> None:
    update = from_generic({"id": 3, "status": "failed", "detail": "Unknown subscriber"})
    assert update.unassigned == "Unknown subscriber"
    assert from_generic({"id": 3, "status": "failed", "detail": "absent"}).unassigned is None
    assert from_generic({"id": 3, "status": "delivered",
                         "detail": "unknown subscriber"}).unassigned is None


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'npai.db'}")
    yield database
    database.close()


def submitted(db: Database, number: str = NUMBER) -> int:
    def add(session: Session) -> int:
        message = Message(to=number, text="hi", status=MessageStatus.SUBMITTED)
        queries.add_request(session, SendRequestRow(user="alice@example.com"), [message])
        assert message.id is not None
        return message.id

    return db.run_sync(add)


UNASSIGNED = "NACK/0x0000000b/Invalid Destination Address"


async def test_two_reports_in_a_row_flag_the_number_and_log_it_masked(
    db: Database, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "mail2sms.dlr")
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=submitted(db))
    [health] = db.run_sync(lambda s: npai.listing(s, include_unflagged=True))
    assert health.unassigned_in_row == 1 and health.flagged_at is None
    assert db.run_sync(npai.flagged_numbers) == set()
    assert caplog.records == []
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=submitted(db))
    [health] = db.run_sync(npai.listing)
    assert health.number == NUMBER and health.unassigned_in_row == 2
    assert health.flagged_at is not None and health.last_reason == UNASSIGNED
    assert db.run_sync(npai.flagged_numbers) == {NUMBER}
    [record] = caplog.records
    assert "+336******78" in record.getMessage() and NUMBER not in record.getMessage()


async def test_the_same_report_received_twice_counts_once(db: Database) -> None:
    mid = submitted(db)
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=mid)
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=mid)
    await record_dlr(db, from_kannel(2, "stat:UNDELIV err:001"), message_id=mid)
    [health] = db.run_sync(lambda s: npai.listing(s, include_unflagged=True))
    assert health.unassigned_in_row == 1 and health.flagged_at is None


async def test_a_delivery_in_between_resets_the_count(db: Database) -> None:
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=submitted(db))
    await record_dlr(db, from_kannel(1, "stat:DELIVRD"), message_id=submitted(db))
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=submitted(db))
    [health] = db.run_sync(lambda s: npai.listing(s, include_unflagged=True))
    assert health.unassigned_in_row == 1 and health.flagged_at is None
    # other failures neither count nor reset
    await record_dlr(db, from_kannel(2, "stat:UNDELIV err:000"), message_id=submitted(db))
    await record_dlr(db, from_kannel(16, UNASSIGNED), message_id=submitted(db))
    assert db.run_sync(npai.flagged_numbers) == {NUMBER}
    # a delivery to a flagged number (a message already under way) clears the flag
    await record_dlr(db, from_kannel(1, "stat:DELIVRD"), message_id=submitted(db))
    assert db.run_sync(npai.flagged_numbers) == set()
    assert db.run_sync(lambda s: npai.listing(s, include_unflagged=True)) == []


def plan_for(db: Database, *numbers: str):  # type: ignore[no-untyped-def]
    req = SendRequest(user="alice@example.com", text="Rappel", recipients=list(numbers))
    return db.run_sync(lambda s: prepare(
        s, req, policy=UserPolicy(email="alice@example.com"), compliance=ComplianceConfig(),
        shortcode="36105"))


async def test_a_flagged_number_is_skipped_until_cleared(db: Database) -> None:
    for _ in range(2):
        await record_dlr(db, from_kannel(2, "stat:UNDELIV err:001"), message_id=submitted(db))
    plan = plan_for(db, "06 12 34 56 78", "07 51 22 33 44")
    assert [(m.to, m.status, m.reason) for m in plan.messages] == [
        (NUMBER, "skipped", NPAI_REASON), ("+33751223344", "queued", None)]
    assert NPAI_REASON == ("number unassigned (NPAI): reported twice in a row, "
                           "see mail2sms npai list")
    assert db.run_sync(lambda s: npai.clear(s, NUMBER)) is True
    assert db.run_sync(lambda s: npai.clear(s, NUMBER)) is False
    plan = plan_for(db, "06 12 34 56 78")
    assert plan.messages[0].status == "queued"
