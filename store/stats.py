"""Statistics and history of sent messages, aggregated in SQL.

Periods are half-open, ``start <= created_at < end``, on the message's ``created_at``;
callers pass aware UTC datetimes (day boundaries in a local timezone are theirs to make).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, literal
from sqlalchemy.engine import Row
from sqlmodel import Session, col, select

from store.models import Message, MessageStatus, SendRequestRow

#: Every message status, in the order reports list them.
STATUSES: tuple[str, ...] = tuple(
    s.value for s in (
        MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SENDING,
        MessageStatus.SUBMITTED, MessageStatus.PENDING, MessageStatus.DELIVERED,
        MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.LATE,
        MessageStatus.REFUSED, MessageStatus.SKIPPED, MessageStatus.UNCERTAIN,
    )
)

#: The outcomes the delivery rate divides by: handed to the operator and settled or late.
RATE_BASE: tuple[str, ...] = (
    MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.LATE,
)

#: Columns of ``iter_messages`` rows, in CSV order.
EXPORT_COLUMNS: tuple[str, ...] = (
    "id", "request_id", "created_at", "user", "category", "to", "sender", "status",
    "reason", "encoding", "segments", "attempts", "gateway_id", "submitted_at", "final_at",
    "text",
)


@dataclass
class Counts:
    """Messages per status, with their segments and how many the gateway accepted."""

    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    segments: int = 0
    #: Messages with a ``submitted_at``: accepted by the gateway, whatever came after.
    sent: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def delivery_rate(self) -> float | None:
        """delivered / (delivered + failed + expired + late); None when that sum is 0.

        Messages still on their way (queued, deferred, sending, submitted, pending,
        uncertain) and those never sent (skipped, refused) are left out of both terms.
        """
        base = sum(self.by_status.get(s, 0) for s in RATE_BASE)
        return self.by_status.get(MessageStatus.DELIVERED, 0) / base if base else None

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.by_status), "total": self.total, "sent": self.sent,
                "segments": self.segments, "delivery_rate": self.delivery_rate}


def _add(counts: Counts, status: str, number: int, segments: int | None,
         sent: int | None) -> None:
    counts.by_status[status] = counts.by_status.get(status, 0) + int(number)
    counts.segments += int(segments or 0)
    counts.sent += int(sent or 0)


def _aggregates() -> tuple[Any, ...]:
    return (func.count(), func.sum(Message.segments), func.count(col(Message.submitted_at)))


def _period(stmt: Any, start: datetime, end: datetime, user: str | None) -> Any:
    stmt = stmt.where(col(Message.created_at) >= start, col(Message.created_at) < end)
    if user is not None:
        stmt = stmt.join(SendRequestRow, col(Message.request_id) == col(SendRequestRow.id))
        stmt = stmt.where(SendRequestRow.user == user)
    return stmt


def request_counts(session: Session, request_id: int) -> Counts:
    """Counts of one send request's messages."""
    stmt = (select(Message.status, *_aggregates())
            .where(Message.request_id == request_id).group_by(Message.status))
    counts = Counts()
    for status, number, segments, sent in session.execute(stmt):
        _add(counts, status, number, segments, sent)
    return counts


def period_counts(session: Session, start: datetime, end: datetime,
                  user: str | None = None) -> Counts:
    """Counts of the messages created in ``[start, end)``, of one user's requests or all."""
    stmt = _period(select(Message.status, *_aggregates()), start, end, user)
    counts = Counts()
    for status, number, segments, sent in session.execute(stmt.group_by(Message.status)):
        _add(counts, status, number, segments, sent)
    return counts


def reason_counts(session: Session, status: str, *, request_id: int | None = None,
                  start: datetime | None = None, end: datetime | None = None,
                  user: str | None = None) -> dict[str, int]:
    """How many messages in ``status`` per reason (most frequent first), for one request
    or for a period; a missing reason counts under ``""``."""
    reason = col(Message.reason)
    stmt = select(reason, func.count()).where(Message.status == status)
    if request_id is not None:
        stmt = stmt.where(Message.request_id == request_id)
    if start is not None and end is not None:
        stmt = _period(stmt, start, end, user)
    counts: dict[str, int] = {}
    for why, number in session.execute(stmt.group_by(reason)):
        counts[why or ""] = counts.get(why or "", 0) + int(number)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def daily_counts(session: Session, days: Sequence[tuple[date, datetime, datetime]],
                 user: str | None = None) -> dict[date, Counts]:
    """Counts per day; ``days`` gives each day with its UTC bounds ``[start, end)``,
    consecutive (made by the caller in its timezone, DST included). Every day is in
    the result, empty days with zeros.

    The day of each row is picked in SQL by a CASE over the bounds, so SQLite and
    PostgreSQL group the same way without timezone functions.
    """
    result = {day: Counts() for day, _, _ in days}
    if not days:
        return result
    day_of = case(
        *((col(Message.created_at) < end, literal(day.isoformat())) for day, _, end in days),
    )
    inner = _period(
        select(day_of.label("day"), col(Message.status).label("status"),
               col(Message.segments).label("segments"),
               col(Message.submitted_at).label("submitted_at")),
        days[0][1], days[-1][2], user,
    ).subquery()
    stmt = (select(inner.c.day, inner.c.status, func.count(), func.sum(inner.c.segments),
                   func.count(inner.c.submitted_at))
            .group_by(inner.c.day, inner.c.status))
    for day, status, number, segments, sent in session.execute(stmt):
        _add(result[date.fromisoformat(day)], status, number, segments, sent)
    return result


def iter_messages(session: Session, start: datetime, end: datetime,
                  user: str | None = None, *, chunk: int = 2000) -> Iterator[Row[Any]]:
    """Messages created in ``[start, end)`` in id order, each with its request's user,
    category, source and subject; fetched ``chunk`` rows at a time (a server-side cursor
    on PostgreSQL), so memory stays bounded whatever the count. Consume it inside the
    session."""
    m, r = Message, SendRequestRow
    stmt = (
        select(
            col(m.id), col(m.request_id), col(m.created_at), col(r.user), col(r.category),
            col(r.source), col(r.subject), col(m.to), col(m.sender), col(m.status),
            col(m.reason), col(m.encoding), col(m.segments), col(m.attempts),
            col(m.gateway_id), col(m.submitted_at), col(m.final_at), col(m.text),
        )
        .outerjoin(r, col(m.request_id) == col(r.id))
        .where(col(m.created_at) >= start, col(m.created_at) < end)
        .order_by(col(m.id))
        .execution_options(yield_per=chunk)
    )
    if user is not None:
        stmt = stmt.where(r.user == user)
    yield from session.execute(stmt)
