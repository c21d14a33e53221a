"""What the inbound pipeline reads about the senders of a batch of SMS, in five queries.

Per SMS, the pipeline asks whether the sender opted out, has an open survey session, is
a contact (with groups), and how many SMS went to them today. Asked one SMS at a time
that is five statements per SMS, the larger part of its cost; asked for a batch, five
statements in all. The answers hold for the first SMS of each sender in the batch only:
handling it may change them (STOP, a survey started, a reply queued), so a second SMS
from the same sender reads them again (``Senders.take``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from store import queries
from store.contacts import fields_of
from store.models import Contact, ContactGroup, GroupMember, Message, OptOut, SurveySession

_OPTOUTS = OptOut.__table__  # type: ignore[attr-defined]
_SESSIONS = SurveySession.__table__  # type: ignore[attr-defined]
_CONTACTS = Contact.__table__  # type: ignore[attr-defined]
_MEMBERS = GroupMember.__table__  # type: ignore[attr-defined]
_GROUPS = ContactGroup.__table__  # type: ignore[attr-defined]
_MESSAGES = Message.__table__  # type: ignore[attr-defined]

_OPTED_OUT = select(_OPTOUTS.c.number, _OPTOUTS.c.created_at).where(
    _OPTOUTS.c.number.in_(bindparam("numbers", expanding=True)))
_OPEN_SESSIONS = (
    select(_SESSIONS)
    .where(_SESSIONS.c.number.in_(bindparam("numbers", expanding=True)))
    .where(_SESSIONS.c.status == "open")
    .order_by(_SESSIONS.c.id)  # the newest last: it wins, as in ``open_session``
)
_CONTACT_ROWS = select(_CONTACTS).where(
    _CONTACTS.c.number.in_(bindparam("numbers", expanding=True)))
_GROUP_NAMES = (
    select(_MEMBERS.c.contact_id, _GROUPS.c.name)
    .join(_GROUPS, _GROUPS.c.id == _MEMBERS.c.group_id)
    .where(_MEMBERS.c.contact_id.in_(bindparam("ids", expanding=True)))
    .order_by(_GROUPS.c.name)
)
_SENT = (
    select(_MESSAGES.c.to, func.count())
    .where(_MESSAGES.c.to.in_(bindparam("numbers", expanding=True)))
    .where(_MESSAGES.c.created_at >= bindparam("since"))
    .where(_MESSAGES.c.status.not_in(queries.NOT_COUNTED))  # as ``sent_since`` counts
    .group_by(_MESSAGES.c.to)
)


@dataclass
class Sender:
    """One sender as the batch found them."""

    opt_out: Any | None  # the opt-out entry (number, created_at), as ``is_opted_out``
    session: SurveySession | None  # a detached copy: written to by id only
    contact: dict[str, Any]  # as ``contact_fields``
    sent_today: int  # as ``sent_since(number, since)``
    since: datetime


@dataclass
class Senders:
    """The senders of a batch; each can be taken once."""

    found: dict[str, Sender] = field(default_factory=dict)

    def take(self, number: str) -> Sender | None:
        """The sender's answers for their first SMS of the batch; None afterwards (the
        caller then queries as for a lone SMS)."""
        return self.found.pop(number, None)


def look_up(session: Session, numbers: Iterable[str], since: datetime) -> Senders:
    """The senders ``numbers`` (SMS counted since ``since``), five queries in all."""
    wanted = sorted(set(numbers))
    senders = Senders()
    if not wanted:
        return senders
    session.flush()
    connection = session.connection()
    args = {"numbers": wanted}
    opt_outs = {row.number: row for row in connection.execute(_OPTED_OUT, args)}
    sessions = {row.number: SurveySession(**row._mapping)
                for row in connection.execute(_OPEN_SESSIONS, args)}
    contacts = {row.number: row for row in connection.execute(_CONTACT_ROWS, args)}
    groups: dict[int, list[str]] = defaultdict(list)
    if contacts:
        ids = [row.id for row in contacts.values()]
        for contact_id, name in connection.execute(_GROUP_NAMES, {"ids": ids}):
            groups[contact_id].append(name)
    sent = {to: count for to, count in connection.execute(_SENT, {**args, "since": since})}
    for number in wanted:
        contact = contacts.get(number)
        senders.found[number] = Sender(
            opt_out=opt_outs.get(number),
            session=sessions.get(number),
            contact=fields_of(number, contact, groups[contact.id] if contact else []),
            sent_today=int(sent.get(number, 0)),
            since=since,
        )
    return senders
