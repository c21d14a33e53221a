"""Queries of sends, the outbox and opt-outs (received SMS: store/inbound.py; delivery
reports: store/reports.py). Callers pass aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, update
from sqlmodel import Session, col, select

from store import credit
from store.models import (
    Message,
    MessageStatus,
    OptOut,
    OptOutEvent,
    SendRequestRow,
    utcnow,
)

_CHUNK = 500  # SQLite's default limit on bound parameters is well above this
_INSERT_CHUNK = 5000  # message rows per executemany

#: Statuses that count as "sent to this number" for the daily per-number maximum.
NOT_COUNTED = (MessageStatus.SKIPPED, MessageStatus.REFUSED, MessageStatus.FAILED)


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- requests and messages -------------------------------------------------------


def add_request(session: Session, request: SendRequestRow, messages: list[Message]) -> int:
    """Insert a request and its messages in the caller's transaction; return its id."""
    session.add(request)
    session.flush()
    assert request.id is not None
    for message in messages:
        message.request_id = request.id
    session.add_all(messages)
    session.flush()
    return request.id


def insert_request(
    session: Session, request: dict[str, Any], messages: Iterable[dict[str, Any]]
) -> int:
    """Insert a request and its messages from plain column values; return its id.

    The same as ``add_request`` without building ORM objects, which costs more than the
    inserts themselves on the path that answers an SMTP client.
    """
    now = utcnow()
    # Table-level (Core) statements: the ORM's bulk path costs more than the SQL here.
    requests = SendRequestRow.__table__  # type: ignore[attr-defined]
    table = Message.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    request_id = connection.execute(
        insert(requests).returning(requests.c.id), {"created_at": now, **request}
    ).scalar_one()
    defaults = {"request_id": request_id, "created_at": now, "updated_at": now,
                "attempts": 0, "sender": None, "text": "", "encoding": "gsm7", "segments": 1,
                "reason": None, "not_before": None, "charged": False}
    # in slices: a large send's rows never all exist at once as parameter dicts
    statement = insert(table)
    pending = iter(messages)
    while chunk := [{**defaults, **m} for m in islice(pending, _INSERT_CHUNK)]:
        connection.execute(statement, chunk)
    return int(request_id)


def request_status_of_email(
    session: Session, email_message_id: str, user: str, source: str
) -> str | None:
    """The status of the request already made from this email, if any."""
    query = select(SendRequestRow.status).where(
        SendRequestRow.email_message_id == email_message_id, SendRequestRow.user == user,
        SendRequestRow.source == source).limit(1)
    return session.exec(query).first()


def get_request(session: Session, request_id: int) -> SendRequestRow | None:
    return session.get(SendRequestRow, request_id)


def messages_of_request(session: Session, request_id: int) -> list[Message]:
    stmt = select(Message).where(Message.request_id == request_id).order_by(col(Message.id))
    return list(session.exec(stmt))


def get_message(session: Session, message_id: int) -> Message | None:
    return session.get(Message, message_id)


def counts_since(session: Session, numbers: Sequence[str], since: datetime) -> dict[str, int]:
    """How many SMS each number was sent (or is queued to get) since ``since``."""
    counts: dict[str, int] = {}
    for chunk in _chunks(list(numbers)):
        stmt = (
            select(Message.to, func.count())
            .where(col(Message.to).in_(chunk))
            .where(Message.created_at >= since)
            .where(col(Message.status).not_in(NOT_COUNTED))
            .group_by(Message.to)
        )
        for number, count in session.exec(stmt):
            counts[number] = count
    return counts


def user_count_since(session: Session, user: str, since: datetime) -> int:
    """How many SMS a user has queued since ``since`` (for per-user daily limits)."""
    stmt = (
        select(func.count())
        .select_from(Message)
        .join(SendRequestRow, col(Message.request_id) == col(SendRequestRow.id))
        .where(SendRequestRow.user == user)
        .where(Message.created_at >= since)
        .where(col(Message.status).not_in(NOT_COUNTED))
    )
    return int(session.exec(stmt).one())


# --- outbox ------------------------------------------------------------------------


def claim_due(session: Session, owner: str, limit: int, lease: timedelta) -> list[Message]:
    """Mark up to ``limit`` due messages as ``sending`` for ``owner`` and return them.

    On PostgreSQL the inner select locks with SKIP LOCKED, so concurrent dispatchers
    never claim the same row; on SQLite the single writer lock gives the same result.
    """
    now = utcnow()
    due = (
        select(Message.id)
        .where(col(Message.status).in_((MessageStatus.QUEUED, MessageStatus.DEFERRED)))
        .where(or_(col(Message.not_before).is_(None), col(Message.not_before) <= now))
        .where(or_(col(Message.next_attempt_at).is_(None), col(Message.next_attempt_at) <= now))
        .order_by(col(Message.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(Message)
        .where(col(Message.id).in_(due.scalar_subquery()))
        .values(
            status=MessageStatus.SENDING,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=Message.attempts + 1,
            updated_at=now,
        )
        .returning(Message)
        .execution_options(synchronize_session=False)
    )
    rows = list(session.exec(stmt).scalars())  # type: ignore[call-overload]
    rows.sort(key=lambda m: m.id or 0)
    return rows


def next_due_at(session: Session) -> datetime | None:
    """When the earliest waiting message becomes due (None when nothing waits)."""
    waiting = col(Message.status).in_((MessageStatus.QUEUED, MessageStatus.DEFERRED))
    stmt = select(
        func.min(func.coalesce(Message.next_attempt_at, Message.not_before, Message.created_at))
    ).where(waiting)
    return session.exec(stmt).one()


def release_claims(session: Session, owner: str, message_ids: Sequence[int]) -> None:
    """Give back claimed messages that were never handed to the gateway."""
    if not message_ids:
        return
    session.execute(
        update(Message)
        .where(col(Message.id).in_(list(message_ids)))
        .where(col(Message.lease_owner) == owner)
        .where(col(Message.status) == MessageStatus.SENDING)
        .values(
            status=MessageStatus.QUEUED,
            attempts=Message.attempts - 1,
            lease_owner=None,
            lease_until=None,
            updated_at=utcnow(),
        )
    )


def recover_stale(session: Session, *, any_lease: bool = False) -> int:
    """Claims whose lease ran out (``any_lease``: every claim, when the caller knows no
    dispatcher is alive): their gateway call may have happened, so they are parked as
    ``uncertain`` rather than sent a second time. Returns how many."""
    now = utcnow()
    stale = update(Message).where(col(Message.status) == MessageStatus.SENDING)
    if not any_lease:
        stale = stale.where(col(Message.lease_until) < now)
    result = session.execute(
        stale
        .values(
            status=MessageStatus.UNCERTAIN,
            reason="the dispatcher stopped during the gateway call; not resent to avoid a "
            "duplicate (a delivery report will settle it)",
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def mark_late(session: Session, older_than: datetime) -> int:
    """Submitted messages with no final report since ``older_than`` become ``late``."""
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(col(Message.status).in_((MessageStatus.SUBMITTED, MessageStatus.PENDING)))
        .where(col(Message.submitted_at) < older_than)
        .values(status=MessageStatus.LATE, reason="no delivery report after 48 h", updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def status_counts(session: Session, request_id: int | None = None) -> dict[str, int]:
    stmt = select(Message.status, func.count()).group_by(Message.status)
    if request_id is not None:
        stmt = stmt.where(Message.request_id == request_id)
    return {status: count for status, count in session.exec(stmt)}


# --- opt-outs ----------------------------------------------------------------------


def opted_out(session: Session, numbers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(numbers)):
        found.update(session.exec(select(OptOut.number).where(col(OptOut.number).in_(chunk))))
    return found


def add_optout(
    session: Session, number: str, source: str, by: str | None, note: str | None = None
) -> bool:
    """Put a number on the opt-out list; False when it already was."""
    if session.get(OptOut, number) is not None:
        return False
    session.add(OptOut(number=number, source=source, by=by))
    session.add(OptOutEvent(number=number, action="add", source=source, by=by, note=note))
    return True


def remove_optout(
    session: Session, number: str, source: str, by: str | None, note: str | None = None
) -> bool:
    row = session.get(OptOut, number)
    if row is None:
        return False
    session.delete(row)
    session.add(OptOutEvent(number=number, action="remove", source=source, by=by, note=note))
    return True


def list_optouts(session: Session) -> list[OptOut]:
    return list(session.exec(select(OptOut).order_by(col(OptOut.number))))


def optout_history(session: Session, number: str | None = None) -> list[OptOutEvent]:
    """Every opt-out change (of one number, or all), oldest first."""
    stmt = select(OptOutEvent).order_by(col(OptOutEvent.at), col(OptOutEvent.id))
    if number is not None:
        stmt = stmt.where(OptOutEvent.number == number)
    return list(session.exec(stmt))


# --- outbox results, many per transaction ------------------------------------------



def _in_hand(table: Any) -> Any:
    """Statuses a gateway answer may settle: still claimed, or parked by
    ``recover_stale`` after the lease ran out while the answer was on its way."""
    # Two comparisons rather than IN: an expanding IN cannot be used with executemany.
    return or_(
        table.c.status == MessageStatus.SENDING.value,
        table.c.status == MessageStatus.UNCERTAIN.value,
    )


def record_submissions(session: Session, results: Sequence[tuple[int, str | None]]) -> None:
    """Record the gateway ids of accepted messages, one statement for the whole batch.

    A delivery report can beat this write (Kannel sends ``8`` at once): the message
    then keeps the report's status and only gains the gateway id.
    """
    if not results:
        return
    table = Message.__table__  # type: ignore[attr-defined]
    in_hand = _in_hand(table)
    now = utcnow()
    # Rows never claimed (queued, deferred, skipped, refused) are not ours to touch.
    never_claimed = [table.c.status != s.value for s in (
        MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SKIPPED,
        MessageStatus.REFUSED)]
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("mid"))
        .where(and_(*never_claimed))
        .values(
            status=case((in_hand, MessageStatus.SUBMITTED.value), else_=table.c.status),
            reason=case((in_hand, None), else_=table.c.reason),
            gateway_id=func.coalesce(bindparam("gid"), table.c.gateway_id),
            submitted_at=func.coalesce(table.c.submitted_at, now),
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        [{"mid": mid, "gid": gid} for mid, gid in results],
    )


def record_retries(session: Session, retries: Sequence[tuple[int, datetime, str]]) -> None:
    """Queue messages again after a transient failure: (id, next attempt, reason)."""
    if not retries:
        return
    table = Message.__table__  # type: ignore[attr-defined]
    now = utcnow()
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("mid"))
        .where(_in_hand(table))
        .values(
            status=MessageStatus.QUEUED.value,
            next_attempt_at=bindparam("when"),
            reason=bindparam("why"),
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        [{"mid": mid, "when": when, "why": why} for mid, when, why in retries],
    )


def record_failures(session: Session, failures: Sequence[tuple[int, str]]) -> None:
    """Mark messages failed for good: (id, reason)."""
    if not failures:
        return
    table = Message.__table__  # type: ignore[attr-defined]
    now = utcnow()
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("mid"))
        .where(_in_hand(table))
        .values(
            status=MessageStatus.FAILED.value,
            reason=bindparam("why"),
            final_at=now,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        [{"mid": mid, "why": why} for mid, why in failures],
    )
    # Only those this call failed: one a DLR settled first keeps its own outcome.
    credit.restore(session, [mid for mid, _ in failures], reason="failed",
                   statuses=(MessageStatus.FAILED.value,))
