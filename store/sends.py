"""Campaign life of a send (a request): pause, resume, cancel, release.

Only messages the dispatcher has not taken yet change: a message already ``sending``
finishes its gateway call, so nothing is lost and nothing is sent twice. The statuses
are defined in ``store.campaigns``; a change that makes no sense from the current one
(resume a cancelled send, cancel a done one, release what is not a draft) raises
``NotAllowed`` naming that status, and changes nothing.

Each change starts with a write on the request row, so two changes to one request (two
admins, the CLI and the API) take turns: PostgreSQL locks the row, SQLite the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, update
from sqlmodel import Session, col

from store import credit
from store.campaigns import Campaign, campaign_status
from store.models import Message, MessageStatus, SendRequestRow, utcnow

_WAITING = (MessageStatus.QUEUED, MessageStatus.DEFERRED)

#: The first instant marketing SMS may go at or after a given one (the marketing window);
#: store imports nothing of ours, so the caller passes it in.
MarketingWindow = Callable[[datetime], datetime]


class UnknownSend(LookupError):
    """No send request with that id."""


class NotAllowed(ValueError):
    """The change makes no sense from the send's current status."""

    def __init__(self, request_id: int, status: str, action: str, hint: str = "") -> None:
        self.request_id = request_id
        self.status = status
        super().__init__(f"send #{request_id} is {status}: it cannot be {action}"
                         + (f" ({hint})" if hint else ""))


@dataclass
class Change:
    """What a pause, resume, cancel or release did."""

    changed: int  # messages whose status changed
    before: str  # the send's status before
    campaign: Campaign  # the send after, with its status and counts


def _begin(session: Session, request_id: int, action: str, allowed: set[str],
           hints: dict[str, str] | None = None) -> str:
    """Lock the request and return its status, or raise ``NotAllowed`` (with the hint
    for that status) when it is not in ``allowed``."""
    locked = session.execute(update(SendRequestRow)
                             .where(col(SendRequestRow.id) == request_id)
                             .values(state=col(SendRequestRow.state)))
    if not locked.rowcount:  # type: ignore[attr-defined]
        raise UnknownSend(f"no send request {request_id}")
    found = campaign_status(session, request_id)
    assert found is not None
    if found.status not in allowed:
        raise NotAllowed(request_id, found.status, action, (hints or {}).get(found.status, ""))
    return found.status


def _set_state(session: Session, request_id: int, state: str | None) -> None:
    session.execute(update(SendRequestRow).where(col(SendRequestRow.id) == request_id)
                    .values(state=state))


def _done(session: Session, request_id: int, changed: int, before: str) -> Change:
    after = campaign_status(session, request_id)
    assert after is not None
    return Change(changed=changed, before=before, campaign=after)


def _hold(session: Session, request_id: int) -> int:
    """Hold the send's waiting messages (``paused``); returns how many."""
    result = session.execute(
        update(Message)
        .where(col(Message.request_id) == request_id)
        .where(col(Message.status).in_(_WAITING))
        .values(status=MessageStatus.PAUSED, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def hold_draft(session: Session, request_id: int) -> int:
    """Make a just-queued send a draft: its messages wait until it is released."""
    held = _hold(session, request_id)
    _set_state(session, request_id, "draft")
    return held


def _let_go(session: Session, request_id: int, window: MarketingWindow | None) -> int:
    """Queue the held messages again (``deferred`` when their time is still to come);
    a marketing send is first moved to the marketing window when it is closed now."""
    now = utcnow()
    request = session.get(SendRequestRow, request_id)
    if window is not None and request is not None and request.category == "marketing":
        earliest = window(now).astimezone(UTC)
        if earliest > now:
            session.execute(
                update(Message)
                .where(col(Message.request_id) == request_id)
                .where(col(Message.status) == MessageStatus.PAUSED)
                .where(col(Message.not_before).is_(None) | (col(Message.not_before) < earliest))
                .values(not_before=earliest)
            )
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


_NOTHING_LEFT = "nothing is left to send"


def pause(session: Session, request_id: int) -> Change:
    """Hold the messages not taken yet; a ready or sending send becomes ``paused``."""
    before = _begin(session, request_id, "paused", {"ready", "sending"}, {
        "done": _NOTHING_LEFT, "draft": "a draft is held already; release it to send it"})
    held = _hold(session, request_id)
    _set_state(session, request_id, "paused")
    return _done(session, request_id, held, before)


def resume(session: Session, request_id: int, *, window: MarketingWindow | None = None
           ) -> Change:
    """Let a paused send's messages go again; each is sent once."""
    before = _begin(session, request_id, "resumed", {"paused"}, {
        "draft": "use release", "cancelled": "a cancelled send stays cancelled"})
    released = _let_go(session, request_id, window)
    _set_state(session, request_id, None)
    return _done(session, request_id, released, before)


def release(session: Session, request_id: int, *, window: MarketingWindow | None = None
            ) -> Change:
    """Send a draft: its held messages become ``queued`` (``deferred`` when their time is
    still to come); the send becomes ``ready``."""
    before = _begin(session, request_id, "released", {"draft"}, {
        "paused": "use resume", "cancelled": "a cancelled send stays cancelled"})
    released = _let_go(session, request_id, window)
    _set_state(session, request_id, None)
    return _done(session, request_id, released, before)


def cancel(session: Session, request_id: int, reason: str) -> Change:
    """Cancel the messages not taken yet (waiting or paused); the send becomes
    ``cancelled``. ``Change.campaign.taken`` says how many had already gone."""
    before = _begin(session, request_id, "cancelled",
                    {"draft", "ready", "sending", "paused"}, {"done": _NOTHING_LEFT})
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(col(Message.request_id) == request_id)
        .where(col(Message.status).in_((*_WAITING, MessageStatus.PAUSED)))
        .values(status=MessageStatus.CANCELLED, reason=reason, updated_at=now, final_at=now)
    )
    cancelled = int(result.rowcount or 0)  # type: ignore[attr-defined]
    credit.restore_request(session, request_id, status=MessageStatus.CANCELLED.value,
                           reason="cancelled")
    _set_state(session, request_id, "cancelled")
    return _done(session, request_id, cancelled, before)


def exists(session: Session, request_id: int) -> bool:
    return session.get(SendRequestRow, request_id) is not None
