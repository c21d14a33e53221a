"""Delivery reports: Kannel codes, the generic webhook, and how they move a message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from gateway.dlr import from_generic, from_kannel, generic_ids, record_dlr
from store import queries
from store.db import Database
from store.models import DeliveryReport, Message, MessageStatus, SendRequestRow
from store.reports import DlrUpdate

# --- Kannel -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "answer", "status", "detail"),
    [
        (1, "id:1 stat:DELIVRD err:000", MessageStatus.DELIVERED, "id:1 stat:DELIVRD err:000"),
        (4, None, MessageStatus.PENDING, "phone off or out of reach"),
        (8, "ACK/", MessageStatus.SUBMITTED, "ACK/"),
        (16, None, MessageStatus.FAILED, "rejected by the operator"),
        (16, "NACK/0x0000000b/Invalid Destination Address", MessageStatus.FAILED, None),
    ],
)
def test_kannel_codes(
    code: int, answer: str | None, status: MessageStatus, detail: str | None
) -> None:
    update = from_kannel(code, answer)
    assert update.status == status
    assert update.code == str(code)
    if detail is not None:
        assert update.detail == detail


def test_kannel_failed_is_expired_when_the_receipt_says_so() -> None:
    receipt = "id:77 sub:001 dlvrd:000 submit date:2611240900 done date:2611260900 stat:EXPIRED"
    assert from_kannel(2, receipt).status == MessageStatus.EXPIRED
    assert from_kannel(2, "Message expired").status == MessageStatus.EXPIRED


def test_kannel_failed_keeps_the_smsc_codes() -> None:
    update = from_kannel(2, "id:77 sub:001 dlvrd:000 stat:UNDELIV err:001 text:hello")
    assert update.status == MessageStatus.FAILED
    assert update.detail == "not delivered by the operator (stat:UNDELIV err:001)"
    assert from_kannel(2, None).detail == "not delivered by the operator"
    assert (
        from_kannel(16, "stat:REJECTD err:0b").detail
        == "rejected by the operator (stat:REJECTD err:0b)"
    )


@pytest.mark.parametrize("code", [0, 3, 32, -1])
def test_kannel_unknown_code(code: int) -> None:
    with pytest.raises(ValueError, match=f"unknown Kannel delivery report status {code}"):
        from_kannel(code, None)


# --- generic webhook ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("delivered", MessageStatus.DELIVERED),
        ("DELIVRD", MessageStatus.DELIVERED),
        ("failed", MessageStatus.FAILED),
        ("UNDELIV", MessageStatus.FAILED),
        ("undeliverable", MessageStatus.FAILED),
        ("rejected", MessageStatus.FAILED),
        ("REJECTD", MessageStatus.FAILED),
        ("expired", MessageStatus.EXPIRED),
        ("EXPIRED", MessageStatus.EXPIRED),
        ("pending", MessageStatus.PENDING),
        ("submitted", MessageStatus.SUBMITTED),
        ("ACCEPTD", MessageStatus.SUBMITTED),
        ("ENROUTE", MessageStatus.SUBMITTED),
        (" En-Route ", MessageStatus.SUBMITTED),
    ],
)
def test_generic_status_words(word: str, status: MessageStatus) -> None:
    update = from_generic({"id": 3, "status": word})
    assert update.status == status
    assert update.code == word.strip()


def test_generic_detail_and_defaults() -> None:
    assert from_generic(
        {"id": "5", "status": "failed", "detail": "  no  such\nnumber "}
    ).detail == ("no such number")
    assert from_generic({"gateway_id": "abc", "status": "rejected"}).detail == (
        "rejected by the operator"
    )
    assert from_generic({"id": 1, "status": "delivered"}).detail is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "delivered"}, "needs 'id' \\(our message id\\) or 'gateway_id'"),
        ({"id": "abc", "status": "delivered"}, "'id' must be our message id"),
        ({"id": True, "status": "delivered"}, "'id' must be our message id"),
        ({"id": 1}, "'status' must be one of delivered, failed"),
        ({"id": 1, "status": ""}, "'status' must be one of"),
        ({"id": 1, "status": "teleported"}, "unknown 'status' 'teleported': expected one of"),
        ({"id": 1, "status": "delivered", "detail": {"x": 1}}, "'detail' must be text"),
        ({"gateway_id": ["a"], "status": "delivered"}, "'gateway_id' must be a string"),
    ],
)
def test_generic_errors_are_precise(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_generic(payload)


def test_generic_ids() -> None:
    assert generic_ids({"id": "12"}) == (12, None)
    assert generic_ids({"gateway_id": 991}) == (None, "991")
    assert generic_ids({"id": 4, "gateway_id": "g"}) == (4, "g")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_payloads = st.fixed_dictionaries(
    {},
    optional={
        "id": _json,
        "gateway_id": _json,
        "status": st.sampled_from(["delivered", "DELIVRD", "bogus", ""]) | _json,
        "detail": _json,
    },
)


@given(_payloads)
def test_generic_either_maps_or_says_why(payload: dict[str, Any]) -> None:
    try:
        update = from_generic(payload)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(update, DlrUpdate)
        assert update.status in set(MessageStatus)


# --- stored reports ------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'dlr.db'}")
    yield database
    database.close()


async def add_message(db: Database, **fields: Any) -> int:
    def add(session: Session) -> int:
        message = Message(to="+33612345678", text="hi", **fields)
        queries.add_request(session, SendRequestRow(user="alice@example.com"), [message])
        assert message.id is not None
        return message.id

    return await db.run(add)


async def get(db: Database, mid: int) -> Message:
    message = await db.run(lambda s: queries.get_message(s, mid))
    assert message is not None
    return message


async def test_delivered_then_late_smsc_ack_stays_delivered(db: Database) -> None:
    mid = await add_message(db, status=MessageStatus.SUBMITTED, gateway_id="g1")
    delivered = await record_dlr(db, from_kannel(1, "stat:DELIVRD"), message_id=mid)
    assert delivered is not None and delivered.status == MessageStatus.DELIVERED
    await record_dlr(db, from_kannel(8, "ACK/"), message_id=mid)
    message = await get(db, mid)
    assert message.status == MessageStatus.DELIVERED
    assert message.final_at is not None
    reports = await db.run(lambda s: list(s.exec(select(DeliveryReport))))
    assert [r.code for r in reports] == ["1", "8"]  # both kept for the audit trail


async def test_smsc_ack_while_sending_then_the_outbox_result(db: Database) -> None:
    await add_message(db)
    [claimed] = await db.run(lambda s: queries.claim_due(s, "me", 1, timedelta(minutes=5)))
    assert claimed.id is not None
    mid = claimed.id
    # Kannel's 8 can arrive before the dispatcher commits the submission.
    await record_dlr(db, from_kannel(8, "ACK/"), message_id=mid)
    assert (await get(db, mid)).status == MessageStatus.SUBMITTED
    await db.run(lambda s: queries.record_submissions(s, [(mid, "kannel-1")]))
    message = await get(db, mid)
    assert message.status == MessageStatus.SUBMITTED
    assert message.gateway_id == "kannel-1"
    assert message.lease_owner is None and message.lease_until is None


async def test_delivered_before_the_outbox_result_stays_delivered(db: Database) -> None:
    await add_message(db)
    [claimed] = await db.run(lambda s: queries.claim_due(s, "me", 1, timedelta(minutes=5)))
    mid = claimed.id
    assert mid is not None
    await record_dlr(db, from_kannel(1, None), message_id=mid)
    await db.run(lambda s: queries.record_submissions(s, [(mid, "g")]))
    message = await get(db, mid)
    assert message.status == MessageStatus.DELIVERED
    assert message.gateway_id == "g"


async def test_report_by_gateway_id_settles_an_uncertain_message(db: Database) -> None:
    mid = await add_message(db, status=MessageStatus.UNCERTAIN, gateway_id="prov-9")
    update = from_generic({"gateway_id": "prov-9", "status": "UNDELIV", "detail": "absent"})
    message = await record_dlr(db, update, gateway_id="prov-9")
    assert message is not None and message.id == mid
    stored = await get(db, mid)
    assert stored.status == MessageStatus.FAILED
    assert stored.reason == "absent"


async def test_expired_report_gives_the_reason(db: Database) -> None:
    mid = await add_message(db, status=MessageStatus.PENDING)
    await record_dlr(db, from_kannel(2, "stat:EXPIRED"), message_id=mid)
    message = await get(db, mid)
    assert message.status == MessageStatus.EXPIRED
    assert message.reason is not None and "expired" in message.reason


async def test_unknown_message_is_kept_and_returns_none(db: Database) -> None:
    assert await record_dlr(db, from_kannel(1, None), gateway_id="nobody") is None
    reports = await db.run(lambda s: list(s.exec(select(DeliveryReport))))
    assert [(r.gateway_id, r.status) for r in reports] == [("nobody", MessageStatus.DELIVERED)]


async def test_the_returned_message_is_the_stored_one(db: Database) -> None:
    """The report is written with Core statements and the object kept in step by hand:
    what the caller gets must be what a fresh read gives, field by field."""
    fields = ("status", "reason", "final_at", "submitted_at", "lease_owner", "lease_until")
    await add_message(db)
    [claimed] = await db.run(lambda s: queries.claim_due(s, "me", 1, timedelta(minutes=5)))
    mid = claimed.id
    assert mid is not None
    buffered = await record_dlr(db, from_kannel(4, None), message_id=mid)
    stored = await get(db, mid)
    assert buffered is not None and stored.lease_owner == "me"  # not final: lease kept
    assert [getattr(buffered, f) is None for f in fields] == [
        getattr(stored, f) is None for f in fields]
    assert (buffered.status, stored.status) == (MessageStatus.PENDING,) * 2
    failed = await record_dlr(db, DlrUpdate(MessageStatus.FAILED, "2", ""), message_id=mid)
    stored = await get(db, mid)
    assert failed is not None and stored.lease_owner is None and stored.final_at is not None
    assert (failed.status, failed.reason) == (stored.status, stored.reason)
    assert stored.reason is None  # an empty detail is no reason
