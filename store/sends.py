"""Pausing, resuming and cancelling a send (a request) that is under way.

Only messages the dispatcher has not taken yet change: a message already ``sending``
finishes its gateway call, so nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

from sqlalchemy import case, update
from sqlmodel import Session, col

from store.models import Message, MessageStatus, SendRequestRow, utcnow

_WAITING = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


def pause(session: Session, request_id: int) -> int:
    """Hold the send's waiting messages; returns how many."""
    result = session.execute(
        update(Message)
        .where(col(Message.request_id) == request_id)
        .where(col(Message.status).in_(_WAITING))
        .values(status=MessageStatus.PAUSED, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def hold_draft(session: Session, request_id: int) -> int:
    """Make a just-queued send a draft: its messages wait until it is released."""
    held = pause(session, request_id)
    session.execute(update(SendRequestRow).where(col(SendRequestRow.id) == request_id)
                    .values(state="draft"))
    return held


def resume(session: Session, request_id: int) -> int:
    """Let the held messages go again (``deferred`` when their time is still to come)."""
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(col(Message.request_id) == request_id)
        .where(col(Message.status) == MessageStatus.PAUSED)
        .values(
            status=case(
                (col(Message.not_before) > now, MessageStatus.DEFERRED.value),
                else_=MessageStatus.QUEUED.value,
            ),
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def cancel(session: Session, request_id: int, reason: str) -> int:
    """Cancel the messages not taken yet (waiting or paused); returns how many."""
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(col(Message.request_id) == request_id)
        .where(col(Message.status).in_((*_WAITING, MessageStatus.PAUSED)))
        .values(status=MessageStatus.CANCELLED, reason=reason, updated_at=now, final_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def exists(session: Session, request_id: int) -> bool:
    return session.get(SendRequestRow, request_id) is not None
