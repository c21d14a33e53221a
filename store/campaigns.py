"""The status of a send request (a campaign), computed from its state and its messages.

A request has one status:

``refused``
    refused when it came in (spam rule, unknown template ...): nothing was queued.
``draft``
    queued but held (its messages ``paused``) until ``release``.
``cancelled``
    cancelled by hand; the messages not taken yet are ``cancelled``.
``paused``
    paused by hand; the messages not taken yet are ``paused``.
``ready``
    messages waiting (``queued`` or ``deferred``) and none taken by the dispatcher yet.
``sending``
    some messages taken (``sending`` and every later status) and some still waiting or
    in flight (``sending``).
``done``
    nothing waiting and nothing in flight: every message is with the gateway
    (``submitted``, ``pending``, ``late``, ``uncertain``) or settled (``delivered``,
    ``failed``, ``expired``, ``skipped``, ``refused``). Delivery reports may still
    arrive; they change the counts, never the status.

The first three are set by hand (``SendRequestRow.state``, ``status`` for refused); the
other four follow from one GROUP BY over the request's messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from store.models import Message, MessageStatus, SendRequestRow

STATUSES = ("draft", "ready", "sending", "paused", "done", "cancelled", "refused")

_WAITING = {MessageStatus.QUEUED, MessageStatus.DEFERRED}
_HELD = {MessageStatus.PAUSED}
_IN_FLIGHT = {MessageStatus.SENDING}

#: The counts shown to users: every message status falls in exactly one of them.
BUCKETS: dict[str, frozenset[str]] = {
    "queued": frozenset({"queued", "deferred", "paused"}),  # not taken yet
    "sent": frozenset({"sending", "submitted", "pending", "late", "uncertain"}),
    "delivered": frozenset({"delivered"}),
    "failed": frozenset({"failed", "expired"}),
    "skipped": frozenset({"skipped", "refused"}),
    "cancelled": frozenset({"cancelled"}),
}
#: Messages that never go out: they cost nothing.
_NOT_SENT = BUCKETS["skipped"] | BUCKETS["cancelled"]
#: Messages the dispatcher has taken.
TAKEN = BUCKETS["sent"] | BUCKETS["delivered"] | BUCKETS["failed"]


def status_of(state: str | None, request_status: str, by_status: Mapping[str, int]) -> str:
    """The status (see the module docstring) from the request's hand-set state, its
    intake status and its message counts per message status."""
    if request_status == "refused":
        return "refused"
    if state in ("draft", "cancelled", "paused"):
        return state
    def count(statuses: Iterable[str]) -> int:
        return sum(by_status.get(s, 0) for s in statuses)

    if count(_HELD):  # held without a state: a pause made before states were kept
        return "paused"
    if not count(_WAITING) and not count(_IN_FLIGHT):
        return "done"
    return "sending" if count(TAKEN) else "ready"


def buckets(by_status: Mapping[str, int]) -> dict[str, int]:
    """The user-facing counts (queued, sent, delivered, failed, skipped, cancelled)."""
    return {name: sum(by_status.get(s, 0) for s in members)
            for name, members in BUCKETS.items()}


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset; SQLite hands timestamps back without their zone (UTC)."""
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()


@dataclass
class Campaign:
    """One send request with its status and counts."""

    id: int
    created_at: datetime
    user: str
    source: str
    category: str
    sender: str | None
    subject: str
    text: str
    test: bool
    not_before: datetime | None
    status: str
    reason: str | None  # why it was refused
    by_status: dict[str, int] = field(default_factory=dict)
    segments: int = 0  # of the messages sent or to send

    @property
    def counts(self) -> dict[str, int]:
        return buckets(self.by_status)

    @property
    def taken(self) -> int:
        """Messages the dispatcher has taken (gone, or on their way, to the gateway)."""
        return sum(self.by_status.get(s, 0) for s in TAKEN)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "created": _iso(self.created_at), "user": self.user,
            "source": self.source, "category": self.category, "sender": self.sender,
            "subject": self.subject, "text": self.text, "test": self.test,
            "status": self.status, "reason": self.reason, "counts": self.counts,
            "by_status": dict(sorted(self.by_status.items())), "segments": self.segments,
            "not_before": _iso(self.not_before),
        }


def _message_counts(
    session: Session, request_ids: list[int]
) -> dict[int, dict[str, tuple[int, int]]]:
    """Per request, per message status: (messages, segments); one GROUP BY."""
    found: dict[int, dict[str, tuple[int, int]]] = {i: {} for i in request_ids}
    if not request_ids:
        return found
    stmt = (select(Message.request_id, Message.status, func.count(),
                   func.coalesce(func.sum(Message.segments), 0))
            .where(col(Message.request_id).in_(request_ids))
            .group_by(col(Message.request_id), col(Message.status)))
    for request_id, status, count, segments in session.exec(stmt):
        found[int(request_id)][str(status)] = (int(count), int(segments))
    return found


def _campaign(row: SendRequestRow, per_status: dict[str, tuple[int, int]]) -> Campaign:
    by_status = {status: n for status, (n, _) in per_status.items()}
    assert row.id is not None
    return Campaign(
        id=row.id, created_at=row.created_at, user=row.user, source=row.source,
        category=row.category, sender=row.sender, subject=row.subject, text=row.text,
        test=row.test, not_before=row.not_before, reason=row.reason,
        status=status_of(row.state, row.status, by_status), by_status=by_status,
        segments=sum(seg for status, (_, seg) in per_status.items()
                     if status not in _NOT_SENT),
    )


def campaign_status(session: Session, request_id: int) -> Campaign | None:
    """The request with its status and counts; None when there is no such request."""
    row = session.get(SendRequestRow, request_id)
    if row is None:
        return None
    return _campaign(row, _message_counts(session, [request_id])[request_id])


#: Requests read per query while looking for a computed status.
_PAGE = 500


def list_campaigns(
    session: Session,
    *,
    status: str | None = None,
    user: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Campaign]:
    """The newest requests first, at most ``limit``, filtered by status, user and
    creation time (``since``: aware, or naive UTC)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")
    stmt = select(SendRequestRow).order_by(col(SendRequestRow.id).desc())
    if user is not None:
        stmt = stmt.where(SendRequestRow.user == user.strip().lower())
    if since is not None:
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        stmt = stmt.where(col(SendRequestRow.created_at) >= aware.astimezone(UTC))
    stmt = _narrowed(stmt, status)
    found: list[Campaign] = []
    before: int | None = None
    while len(found) < limit:
        page_stmt = stmt if before is None else stmt.where(col(SendRequestRow.id) < before)
        rows = list(session.exec(page_stmt.limit(_PAGE)))
        if not rows:
            break
        counts = _message_counts(session, [r.id for r in rows if r.id is not None])
        for row in rows:
            campaign = _campaign(row, counts[row.id or 0])
            if status is None or campaign.status == status:
                found.append(campaign)
        before = rows[-1].id
        if len(rows) < _PAGE:
            break
    return found[:limit]


def _narrowed(stmt: Any, status: str | None) -> Any:
    """Only the requests that can have ``status``; the rest is checked per request."""
    if status is None:
        return stmt
    if status == "refused":
        return stmt.where(SendRequestRow.status == "refused")
    stmt = stmt.where(SendRequestRow.status != "refused")
    if status in ("draft", "cancelled"):
        return stmt.where(SendRequestRow.state == status)
    if status == "paused":
        return stmt.where((col(SendRequestRow.state) == "paused")
                          | col(SendRequestRow.state).is_(None))
    stmt = stmt.where(col(SendRequestRow.state).is_(None))
    # ready and sending have messages waiting or in flight, done has none: the index on
    # messages.request_id answers that without reading every request's counts
    moving = (select(Message.id).where(Message.request_id == SendRequestRow.id)
              .where(col(Message.status).in_([s.value for s in _WAITING | _IN_FLIGHT])))
    return stmt.where(moving.exists() if status in ("ready", "sending")
                      else ~moving.exists())
