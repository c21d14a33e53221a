"""The store against real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select

from store import queries, reports
from store.db import Database, is_sqlite, make_engine, session_scope
from store.models import (
    DeliveryReport,
    Message,
    MessageStatus,
    OptOutEvent,
    SendRequestRow,
    utcnow,
)

pytestmark = pytest.mark.integration

LEASE = timedelta(minutes=5)
A, B, C = "+33612345678", "+33698765432", "+33611111111"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def add(engine: Engine, *messages: Message, user: str = "alice@example.com") -> list[int]:
    """Insert one request holding ``messages``; returns their ids in order."""
    with session_scope(engine) as session:
        queries.add_request(session, SendRequestRow(user=user, text="hi"), list(messages))
        ids = [m.id for m in messages]
    assert all(i is not None for i in ids)
    return [i for i in ids if i is not None]


def load(engine: Engine, message_id: int) -> Message:
    with session_scope(engine) as session:
        message = queries.get_message(session, message_id)
    assert message is not None
    return message


def claim(
    engine: Engine, owner: str = "d1", limit: int = 100, lease: timedelta = LEASE
) -> list[Message]:
    with session_scope(engine) as session:
        return queries.claim_due(session, owner, limit, lease)


def submitted(
    to: str = A, *, gateway_id: str | None = None, ago: timedelta = timedelta(0)
) -> Message:
    at = utcnow() - ago
    return Message(to=to, status=MessageStatus.SUBMITTED, gateway_id=gateway_id, submitted_at=at)


# --- schema --------------------------------------------------------------------------


def test_tables_created(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {
        "send_requests",
        "messages",
        "delivery_reports",
        "optouts",
        "optout_events",
    } <= tables


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


async def test_database_runs_calls_in_transactions(db_url: str) -> None:
    db = Database(db_url)
    try:
        ids = await db.run(
            lambda s: [
                queries.add_request(s, SendRequestRow(user="u"), [Message(to=A)]),
                queries.add_request(s, SendRequestRow(user="u"), [Message(to=B)]),
            ]
        )
        with pytest.raises(RuntimeError):
            await db.run(lambda s: _add_then_fail(s))
        counts = await db.run(lambda s: queries.status_counts(s))
    finally:
        db.close()
    assert len(set(ids)) == 2
    assert counts == {"queued": 2}  # the failed call was rolled back


def _add_then_fail(session: Session) -> None:
    queries.add_request(session, SendRequestRow(user="u"), [Message(to=C)])
    raise RuntimeError("boom")


# --- requests and messages -----------------------------------------------------------


def test_add_request_and_messages_of_request(engine: Engine) -> None:
    with session_scope(engine) as session:
        request = SendRequestRow(user="alice@example.com", subject="0612345678", text="Hello")
        messages = [Message(to=n, text="Hello") for n in (C, A, B)]
        request_id = queries.add_request(session, request, messages)
    other = add(engine, Message(to=A))

    with session_scope(engine) as session:
        got = queries.messages_of_request(session, request_id)
        row = queries.get_request(session, request_id)
        assert queries.get_request(session, 999_999) is None
        assert queries.get_message(session, 999_999) is None
    assert row is not None and row.user == "alice@example.com" and row.text == "Hello"
    assert [m.to for m in got] == [C, A, B]
    assert [m.id for m in got] == sorted(m.id for m in got if m.id is not None)
    assert {m.request_id for m in got} == {request_id}
    assert {m.status for m in got} == {MessageStatus.QUEUED}
    assert other[0] not in {m.id for m in got}


def test_counts_since_ignores_skipped_refused_and_old(engine: Engine) -> None:
    now = utcnow()
    day_ago = now - timedelta(days=1)
    add(
        engine,
        Message(to=A),
        Message(to=A, status=MessageStatus.DEFERRED, not_before=now + timedelta(hours=1)),
        Message(to=A, status=MessageStatus.SUBMITTED),
        Message(to=A, status=MessageStatus.DELIVERED),
        Message(to=A, status=MessageStatus.SKIPPED, reason="opted out"),
        Message(to=A, status=MessageStatus.REFUSED, reason="daily maximum"),
        Message(to=A, created_at=day_ago - timedelta(minutes=1)),
        Message(to=B, status=MessageStatus.SENDING),
        Message(to=C, status=MessageStatus.SKIPPED),
    )
    with session_scope(engine) as session:
        counts = queries.counts_since(session, [A, B, C, "+33600000000"], day_ago)
    assert counts == {A: 4, B: 1}


def test_counts_since_many_numbers(engine: Engine) -> None:
    # more numbers than one IN (...) chunk
    numbers = [f"+3361{i:07d}" for i in range(1_234)]
    add(engine, *(Message(to=n) for n in numbers[::100]))
    with session_scope(engine) as session:
        counts = queries.counts_since(session, numbers, utcnow() - timedelta(hours=1))
    assert counts == {n: 1 for n in numbers[::100]}


def test_user_count_since(engine: Engine) -> None:
    now = utcnow()
    since = now - timedelta(days=1)
    add(
        engine,
        Message(to=A),
        Message(to=B, status=MessageStatus.DELIVERED),
        Message(to=C, status=MessageStatus.SKIPPED),
        Message(to=C, status=MessageStatus.REFUSED),
        Message(to=A, created_at=since - timedelta(seconds=1)),
        user="alice@example.com",
    )
    add(engine, Message(to=A), user="bob@example.com")
    with session_scope(engine) as session:
        assert queries.user_count_since(session, "alice@example.com", since) == 2
        assert queries.user_count_since(session, "bob@example.com", since) == 1
        assert queries.user_count_since(session, "nobody@example.com", since) == 0


# --- opt-outs ------------------------------------------------------------------------


def test_optouts_add_remove_list_with_history(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert queries.add_optout(session, B, "sms", None) is True
        assert queries.add_optout(session, A, "cli", "admin") is True
    with session_scope(engine) as session:
        assert queries.add_optout(session, A, "sms", None) is False
        assert queries.opted_out(session, [A, B, C]) == {A, B}
        assert [o.number for o in queries.list_optouts(session)] == [A, B]
        assert queries.list_optouts(session)[0].source == "cli"
    with session_scope(engine) as session:
        assert queries.remove_optout(session, A, "sms", A) is True
    with session_scope(engine) as session:
        assert queries.remove_optout(session, A, "sms", A) is False
        assert queries.opted_out(session, [A, B, C]) == {B}
        assert [o.number for o in queries.list_optouts(session)] == [B]
        events = list(session.exec(select(OptOutEvent).order_by(col(OptOutEvent.id))))
    assert [(e.number, e.action, e.source, e.by) for e in events] == [
        (B, "add", "sms", None),
        (A, "add", "cli", "admin"),
        (A, "remove", "sms", A),
    ]
    assert all(e.at.tzinfo is not None for e in events)


def test_optout_added_twice_in_one_transaction(engine: Engine) -> None:
    # an import file listing the same number twice
    with session_scope(engine) as session:
        assert queries.add_optout(session, A, "import", "admin") is True
        assert queries.add_optout(session, A, "import", "admin") is False
    with session_scope(engine) as session:
        assert queries.opted_out(session, [A]) == {A}
        assert session.exec(select(func.count()).select_from(OptOutEvent)).one() == 1


def test_optout_again_after_removal(engine: Engine) -> None:
    with session_scope(engine) as session:
        queries.add_optout(session, A, "sms", None)
    with session_scope(engine) as session:
        queries.remove_optout(session, A, "sms", None)
    with session_scope(engine) as session:
        assert queries.add_optout(session, A, "sms", None) is True
        actions = list(session.exec(select(OptOutEvent.action).order_by(col(OptOutEvent.id))))
    assert actions == ["add", "remove", "add"]


# --- outbox: claiming ----------------------------------------------------------------


def test_claim_due_honours_not_before_and_next_attempt(engine: Engine) -> None:
    now = utcnow()
    hour = timedelta(hours=1)
    ids = add(
        engine,
        Message(to=A),  # 0 due
        Message(to=A, status=MessageStatus.DEFERRED, not_before=now + hour),  # 1
        Message(to=A, status=MessageStatus.DEFERRED, not_before=now - hour),  # 2 due
        Message(to=A, next_attempt_at=now + hour),  # 3
        Message(to=A, next_attempt_at=now - hour),  # 4 due
        Message(to=A, status=MessageStatus.SKIPPED),  # 5
        Message(to=A, status=MessageStatus.SUBMITTED),  # 6
        Message(to=A, status=MessageStatus.UNCERTAIN),  # 7
        Message(to=A, not_before=now - hour, next_attempt_at=now + hour),  # 8
        Message(to=A),  # 9 due
    )
    before = utcnow()
    got = claim(engine, "d1", limit=100)
    after = utcnow()

    assert [m.id for m in got] == [ids[i] for i in (0, 2, 4, 9)]
    for m in got:
        assert m.status == MessageStatus.SENDING
        assert m.lease_owner == "d1"
        assert m.attempts == 1
        assert m.lease_until is not None
        assert before + LEASE <= m.lease_until <= after + LEASE
        stored = load(engine, m.id or 0)
        assert (stored.status, stored.lease_owner, stored.attempts) == ("sending", "d1", 1)
        assert stored.lease_until == m.lease_until
    assert load(engine, ids[1]).status == MessageStatus.DEFERRED
    assert load(engine, ids[3]).attempts == 0
    assert claim(engine, "d2") == []


def test_claim_due_limit_returns_lowest_ids_in_order(engine: Engine) -> None:
    ids = add(engine, *(Message(to=A, text=str(i)) for i in range(10)))
    first = claim(engine, "d1", limit=3)
    second = claim(engine, "d2", limit=4)
    rest = claim(engine, "d3", limit=100)
    assert [m.id for m in first] == ids[:3]
    assert [m.id for m in second] == ids[3:7]
    assert [m.id for m in rest] == ids[7:]
    assert {m.lease_owner for m in second} == {"d2"}


def test_claim_due_again_after_retry_increments_attempts(engine: Engine) -> None:
    [mid] = add(engine, Message(to=A))
    claim(engine)
    with session_scope(engine) as session:
        queries.record_retries(session, [(mid, utcnow() - timedelta(seconds=1), "gateway 503")])
    [again] = claim(engine)
    assert again.id == mid and again.attempts == 2


def _claim_until_empty(
    url: str, owner: str, start: threading.Barrier, out: list[int], errors: list[BaseException]
) -> None:
    """One dispatcher with its own engine, claiming batches of 7 until nothing is due."""
    engine = make_engine(url, create=False)
    try:
        start.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                batch = queries.claim_due(session, owner, 7, LEASE)
            out.extend(m.id for m in batch if m.id is not None)
            if batch:
                continue
            # SKIP LOCKED may hide rows that another dispatcher is claiming right now
            with session_scope(engine) as session:
                left = session.exec(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.status == MessageStatus.QUEUED)
                ).one()
            if left == 0:
                return
        raise TimeoutError(f"{owner}: messages still queued after 30 s")
    except BaseException as exc:
        errors.append(exc)
    finally:
        engine.dispose()


def _concurrent_claims(engine: Engine, url: str, workers: int, total: int) -> None:
    ids = add(engine, *(Message(to=A, text=str(i)) for i in range(total)))
    start = threading.Barrier(workers)
    claimed: list[list[int]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_claim_until_empty, args=(url, f"d{i}", start, claimed[i], errors), daemon=True
        )
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a dispatcher thread did not finish"
    assert not errors, f"dispatcher errors: {errors!r}"

    everything = [i for batch in claimed for i in batch]
    assert len(everything) == len(set(everything)), "a message was claimed twice"
    assert sorted(everything) == ids
    with session_scope(engine) as session:
        rows = list(session.exec(select(Message.status, Message.attempts, Message.lease_owner)))
    assert {(status, attempts) for status, attempts, _ in rows} == {("sending", 1)}
    owners = {owner for _, _, owner in rows}
    for i, batch in enumerate(claimed):
        assert not batch or f"d{i}" in owners


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_dispatchers_never_claim_the_same_row_postgresql(
    engine: Engine, db_url: str
) -> None:
    _concurrent_claims(engine, db_url, workers=4, total=500)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_concurrent_dispatchers_never_claim_the_same_row_sqlite(
    engine: Engine, db_url: str
) -> None:
    # SQLite serialises writers; two engines must not raise "database is locked"
    _concurrent_claims(engine, db_url, workers=2, total=500)


# --- outbox: after the gateway call --------------------------------------------------


def test_record_submissions_only_moves_claimed_rows(engine: Engine) -> None:
    ids = add(engine, Message(to=A), Message(to=B), Message(to=C))
    claim(engine, limit=2)
    with session_scope(engine) as session:
        queries.record_submissions(session, [(ids[0], "gw-0"), (ids[1], None), (ids[2], "gw-2")])
    first, second, third = (load(engine, i) for i in ids)
    assert (first.status, first.gateway_id) == (MessageStatus.SUBMITTED, "gw-0")
    assert first.submitted_at is not None and first.submitted_at.tzinfo is not None
    assert (first.lease_owner, first.lease_until) == (None, None)
    assert (second.status, second.gateway_id) == (MessageStatus.SUBMITTED, None)
    assert (third.status, third.gateway_id, third.submitted_at) == ("queued", None, None)


def test_release_claims_gives_rows_back(engine: Engine) -> None:
    ids = add(engine, Message(to=A), Message(to=B), Message(to=C))
    claim(engine, "d1")
    with session_scope(engine) as session:
        queries.release_claims(session, "d2", ids)  # not d2's rows
        queries.release_claims(session, "d1", [])
    assert {load(engine, i).status for i in ids} == {MessageStatus.SENDING}
    with session_scope(engine) as session:
        queries.release_claims(session, "d1", ids[:2])
    for i in ids[:2]:
        m = load(engine, i)
        assert (m.status, m.attempts, m.lease_owner, m.lease_until) == ("queued", 0, None, None)
    assert load(engine, ids[2]).status == MessageStatus.SENDING
    assert [m.id for m in claim(engine, "d3")] == ids[:2]


def test_recover_stale_parks_expired_leases_only(engine: Engine) -> None:
    expired_id, live_id = add(engine, Message(to=A), Message(to=B))
    claim(engine, "dead", limit=1, lease=timedelta(seconds=-1))
    claim(engine, "alive", limit=1, lease=timedelta(minutes=5))
    with session_scope(engine) as session:
        assert queries.recover_stale(session) == 1
    expired, live = load(engine, expired_id), load(engine, live_id)
    assert expired.status == MessageStatus.UNCERTAIN and expired.reason
    assert (live.status, live.lease_owner) == (MessageStatus.SENDING, "alive")
    with session_scope(engine) as session:
        assert queries.recover_stale(session) == 0
    assert claim(engine, "d3") == []  # uncertain rows are never resent


def test_mark_late_after_48_hours(engine: Engine) -> None:
    hours = timedelta(hours=1)
    old, recent, pending_old, delivered_old = add(
        engine,
        submitted(A, ago=49 * hours),
        submitted(B, ago=1 * hours),
        Message(to=C, status=MessageStatus.PENDING, submitted_at=utcnow() - 50 * hours),
        Message(to=C, status=MessageStatus.DELIVERED, submitted_at=utcnow() - 50 * hours),
    )
    with session_scope(engine) as session:
        assert queries.mark_late(session, utcnow() - 48 * hours) == 2
    assert load(engine, old).status == MessageStatus.LATE
    assert load(engine, pending_old).status == MessageStatus.LATE
    assert load(engine, recent).status == MessageStatus.SUBMITTED
    assert load(engine, delivered_old).status == MessageStatus.DELIVERED


# --- outbox: batched results ----------------------------------------------------------


def test_record_submissions_settles_claimed_and_parked_rows(engine: Engine) -> None:
    sending, parked, queued = add(engine, Message(to=A), Message(to=B), Message(to=C))
    claim(engine, "d1", limit=1)
    claim(engine, "dead", limit=1, lease=timedelta(seconds=-1))
    with session_scope(engine) as session:
        assert queries.recover_stale(session) == 1
    with session_scope(engine) as session:
        queries.record_submissions(session, [])
        queries.record_submissions(session, [(sending, "gw-1"), (parked, "gw-2")])
    for mid, gid in ((sending, "gw-1"), (parked, "gw-2")):
        m = load(engine, mid)
        assert (m.status, m.gateway_id, m.reason) == (MessageStatus.SUBMITTED, gid, None)
        assert (m.lease_owner, m.lease_until) == (None, None)
        assert m.submitted_at is not None and m.submitted_at.utcoffset() == timedelta(0)
    assert load(engine, queued).status == MessageStatus.QUEUED


@pytest.mark.parametrize("early", [MessageStatus.SUBMITTED, MessageStatus.DELIVERED])
def test_record_submissions_after_an_early_dlr_keeps_its_status(
    engine: Engine, early: MessageStatus
) -> None:
    # Kannel reports 8 (and sometimes the final state) before the dispatcher writes
    [mid] = add(engine, Message(to=A))
    claim(engine, "d1")
    with session_scope(engine) as session:
        code = "8" if early == MessageStatus.SUBMITTED else "1"
        reports.apply_dlr(session, reports.DlrUpdate(early, code), message_id=mid)
    with session_scope(engine) as session:
        queries.record_submissions(session, [(mid, "gw-9")])
    m = load(engine, mid)
    assert (m.status, m.gateway_id, m.lease_owner, m.lease_until) == (early, "gw-9", None, None)
    with session_scope(engine) as session:
        queries.record_submissions(session, [(mid, None)])  # no id: keep the known one
    assert load(engine, mid).gateway_id == "gw-9"


def test_record_retries_requeues_only_rows_in_hand(engine: Engine) -> None:
    retried, delivered = add(engine, Message(to=A), submitted(B))
    claim(engine, "d1")
    when = (utcnow() + timedelta(minutes=2)).astimezone(timezone(timedelta(hours=-3)))
    with session_scope(engine) as session:
        queries.record_retries(session, [])
        queries.record_retries(session, [(retried, when, "503"), (delivered, when, "503")])
    m = load(engine, retried)
    assert (m.status, m.reason, m.lease_owner, m.attempts) == ("queued", "503", None, 1)
    assert m.next_attempt_at == when and m.next_attempt_at is not None
    assert m.next_attempt_at.utcoffset() == timedelta(0)
    assert claim(engine, "d2") == []  # not due for two minutes
    assert load(engine, delivered).status == MessageStatus.SUBMITTED
    with session_scope(engine) as session:
        assert queries.next_due_at(session) == when


def test_record_failures_only_touch_rows_in_hand(engine: Engine) -> None:
    failing, delivered = add(engine, Message(to=A), Message(to=B))
    claim(engine, "d1")
    with session_scope(engine) as session:
        reports.apply_dlr(
            session, reports.DlrUpdate(MessageStatus.DELIVERED, "1"), message_id=delivered
        )
    with session_scope(engine) as session:
        queries.record_failures(session, [])
        queries.record_failures(session, [(failing, "invalid number"), (delivered, "late 400")])
    m = load(engine, failing)
    assert (m.status, m.reason, m.lease_owner) == ("failed", "invalid number", None)
    assert m.final_at is not None and m.final_at.utcoffset() == timedelta(0)
    assert load(engine, delivered).status == MessageStatus.DELIVERED


# --- delivery reports ----------------------------------------------------------------


def _reports(engine: Engine) -> list[DeliveryReport]:
    with session_scope(engine) as session:
        return list(session.exec(select(DeliveryReport).order_by(col(DeliveryReport.id))))


def test_apply_dlr_delivered_then_late_accepted_is_ignored(engine: Engine) -> None:
    [mid] = add(engine, submitted(gateway_id="gw-1"))
    with session_scope(engine) as session:
        got = reports.apply_dlr(
            session, reports.DlrUpdate(MessageStatus.DELIVERED, "1"), message_id=mid
        )
        assert got is not None and got.id == mid
    delivered = load(engine, mid)
    assert delivered.status == MessageStatus.DELIVERED
    assert delivered.final_at is not None and delivered.final_at.tzinfo is not None

    # Kannel's "accepted by the SMSC" (8) can arrive after the final report
    with session_scope(engine) as session:
        reports.apply_dlr(session, reports.DlrUpdate(MessageStatus.SUBMITTED, "8"), message_id=mid)
    after = load(engine, mid)
    assert (after.status, after.final_at) == (MessageStatus.DELIVERED, delivered.final_at)
    assert [(r.message_id, r.code, r.status) for r in _reports(engine)] == [
        (mid, "1", "delivered"),
        (mid, "8", "submitted"),
    ]


def test_apply_dlr_failed_keeps_reason(engine: Engine) -> None:
    [mid] = add(engine, submitted())
    with session_scope(engine) as session:
        reports.apply_dlr(
            session,
            reports.DlrUpdate(MessageStatus.FAILED, "16", "rejected by SMSC"),
            message_id=mid,
        )
    failed = load(engine, mid)
    assert (failed.status, failed.reason) == (MessageStatus.FAILED, "rejected by SMSC")
    assert failed.final_at is not None


def test_apply_dlr_settles_late_and_uncertain_messages(engine: Engine) -> None:
    late, uncertain = add(
        engine,
        Message(to=A, status=MessageStatus.LATE, submitted_at=utcnow() - timedelta(days=3)),
        Message(to=B, status=MessageStatus.UNCERTAIN),
    )
    with session_scope(engine) as session:
        for mid in (late, uncertain):
            reports.apply_dlr(
                session, reports.DlrUpdate(MessageStatus.DELIVERED, "1"), message_id=mid
            )
    assert load(engine, late).status == MessageStatus.DELIVERED
    settled = load(engine, uncertain)
    assert settled.status == MessageStatus.DELIVERED and settled.submitted_at is not None


def test_apply_dlr_unknown_message_is_stored(engine: Engine) -> None:
    with session_scope(engine) as session:
        dlr = reports.DlrUpdate(MessageStatus.DELIVERED, "1", "late report")
        assert reports.apply_dlr(session, dlr, message_id=424242) is None
        assert reports.apply_dlr(session, dlr, gateway_id="nope") is None
    stored = _reports(engine)
    assert [(r.message_id, r.gateway_id, r.code, r.detail) for r in stored] == [
        (424242, None, "1", "late report"),
        (None, "nope", "1", "late report"),
    ]
    assert all(r.received_at.tzinfo is not None for r in stored)


def test_apply_dlr_finds_message_by_gateway_id(engine: Engine) -> None:
    first, second = add(engine, submitted(A, gateway_id="gw-a"), submitted(B, gateway_id="gw-b"))
    with session_scope(engine) as session:
        got = reports.apply_dlr(
            session, reports.DlrUpdate(MessageStatus.EXPIRED, "2", "expired"), gateway_id="gw-b"
        )
        assert got is not None and got.id == second
    assert load(engine, second).status == MessageStatus.EXPIRED
    assert load(engine, first).status == MessageStatus.SUBMITTED
    assert [(r.message_id, r.gateway_id) for r in _reports(engine)] == [(second, "gw-b")]


def test_status_counts(engine: Engine) -> None:
    first = add(
        engine,
        Message(to=A),
        Message(to=B),
        Message(to=C, status=MessageStatus.SKIPPED),
    )
    add(engine, Message(to=A, status=MessageStatus.DELIVERED))
    with session_scope(engine) as session:
        request_id = queries.get_message(session, first[0]).request_id  # type: ignore[union-attr]
        assert queries.status_counts(session) == {"queued": 2, "skipped": 1, "delivered": 1}
        assert queries.status_counts(session, request_id) == {"queued": 2, "skipped": 1}
        assert queries.status_counts(session, 999_999) == {}


def test_next_due_at(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert queries.next_due_at(session) is None
    soon = utcnow() + timedelta(minutes=10)
    add(
        engine,
        Message(to=A, status=MessageStatus.DEFERRED, not_before=soon + timedelta(hours=1)),
        Message(to=B, next_attempt_at=soon),
        Message(to=C, status=MessageStatus.SUBMITTED, next_attempt_at=soon - timedelta(hours=1)),
    )
    with session_scope(engine) as session:
        got = queries.next_due_at(session)
    assert got is not None and got.utcoffset() == timedelta(0)
    assert got == soon


# --- timestamps ----------------------------------------------------------------------


def test_aware_utc_datetimes_round_trip(engine: Engine) -> None:
    stamp = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)  # the night clocks change
    [mid] = add(engine, Message(to=A, not_before=stamp, created_at=stamp, submitted_at=stamp))
    got = load(engine, mid)
    for value in (got.not_before, got.created_at, got.submitted_at, got.updated_at):
        assert value is not None
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert got.not_before == stamp and got.created_at == stamp and got.submitted_at == stamp


def test_other_offsets_are_stored_as_the_same_instant(engine: Engine) -> None:
    # due 30 minutes ago, written with a +05:00 offset: its wall clock is in the future
    instant = utcnow() - timedelta(minutes=30)
    plus5 = instant.astimezone(timezone(timedelta(hours=5)))
    [mid] = add(engine, Message(to=A, status=MessageStatus.DEFERRED, not_before=plus5))
    got = load(engine, mid)
    assert got.not_before == instant and got.not_before is not None
    assert got.not_before.utcoffset() == timedelta(0)
    assert [m.id for m in claim(engine)] == [mid]


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    naive = datetime(2026, 1, 1, 12, 0)
    with pytest.raises((ValueError, StatementError)), session_scope(engine) as session:
        session.add(Message(to=A, not_before=naive))
        session.flush()
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == 0


def test_dialect_under_test(engine: Engine, db_url: str) -> None:
    expected: dict[str, Any] = {"sqlite": True, "postgresql": False}
    assert is_sqlite(engine) is expected[db_url.split(":")[0].split("+")[0]]
