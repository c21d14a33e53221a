"""Delivery reports stored against their message: the status they move it to, the
credit a failure gives back, and the numbers they show unassigned (NPAI)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from store import credit, npai
from store.db import core
from store.models import DeliveryReport, Message, MessageStatus, NumberHealth, utcnow


@dataclass(frozen=True)
class DlrUpdate:
    """A delivery report, already mapped to one of our statuses."""

    status: MessageStatus
    code: str
    detail: str | None = None
    #: The report's text when it says the number is not assigned (NPAI), else None.
    unassigned: str | None = None


#: Statuses a DLR may move a message out of (a late DLR still settles it).
_DLR_OPEN = (
    MessageStatus.SENDING,
    MessageStatus.UNCERTAIN,
    MessageStatus.SUBMITTED,
    MessageStatus.PENDING,
    MessageStatus.LATE,
)


def apply_dlr(
    session: Session,
    dlr: DlrUpdate,
    *,
    message_id: int | None = None,
    gateway_id: str | None = None,
    on_flagged: Callable[[NumberHealth], None] | None = None,
) -> Message | None:
    """Store a DLR and move its message on; returns the message, None when unknown.

    A failure gives the message's credit back; an "unassigned" failure counts against
    the number (NPAI) and a delivery clears that count. ``on_flagged`` hears of a number
    this report flagged. Only a report that moves its message counts: the same report
    received twice is not two reports in a row.
    """
    message: Message | None = None
    if message_id is not None:
        message = session.get(Message, message_id)
    elif gateway_id:
        message = session.exec(select(Message).where(Message.gateway_id == gateway_id)).first()
    now = utcnow()
    # Core statements, the ORM object kept in step by hand: a report per SMS sent comes
    # back, and the ORM's unit of work cost more than the two statements.
    connection = core(session)
    connection.execute(_ADD_REPORT, {
        "message_id": message.id if message else message_id, "gateway_id": gateway_id,
        "code": dlr.code, "status": str(dlr.status), "detail": dlr.detail,
        "received_at": now})
    if message is None or message.status not in _DLR_OPEN:
        return message
    final = dlr.status in FINAL_STATUSES_DLR
    why = (dlr.detail or None) if final and dlr.status != MessageStatus.DELIVERED else None
    connection.execute(_SETTLE if final else _MOVE,
                       {"mid": message.id, "st": str(dlr.status), "now": now, "why": why})
    changes: dict[str, object] = {"status": dlr.status, "updated_at": now}
    if message.submitted_at is None:
        changes["submitted_at"] = now
    if final:
        changes.update(final_at=now, lease_owner=None, lease_until=None,
                       reason=why or message.reason)
    for name, value in changes.items():
        set_committed_value(message, name, value)
    if dlr.status == MessageStatus.FAILED:
        if message.charged:
            session.flush()
            credit.restore(session, [message.id or 0], reason="failed")
            set_committed_value(message, "charged", False)
        if dlr.unassigned is not None:
            health = npai.report_unassigned(session, message.to, dlr.unassigned)
            if health.unassigned_in_row == npai.FLAG_AFTER and on_flagged is not None:
                on_flagged(health)
    elif dlr.status == MessageStatus.DELIVERED:
        npai.report_delivered(session, message.to)
    return message


FINAL_STATUSES_DLR = (MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.EXPIRED)

_REPORTS = DeliveryReport.__table__  # type: ignore[attr-defined]
_MESSAGES = Message.__table__  # type: ignore[attr-defined]
_ADD_REPORT = insert(_REPORTS)
#: A report that is not final: the status moves, the lease stays with the dispatcher.
_MOVE = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("mid"))
    .values(status=bindparam("st"), updated_at=bindparam("now"),
            submitted_at=func.coalesce(_MESSAGES.c.submitted_at, bindparam("now")))
)
#: A final one: settled, the lease dropped, the failure's reason kept.
_SETTLE = _MOVE.values(final_at=bindparam("now"), lease_owner=None, lease_until=None,
                       reason=func.coalesce(bindparam("why"), _MESSAGES.c.reason))
