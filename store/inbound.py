"""Queries of the inbound pipeline: received SMS, survey sessions, contacts, replies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store import queries
from store.db import core
from store.models import (
    Inbound,
    Message,
    MessageStatus,
    OptOut,
    SendRequestRow,
    SurveyAnswer,
    SurveySession,
    utcnow,
)

#: Sources of requests written by a person (a reply goes back to them by email).
STAFF_SOURCES = ("smtp", "imap", "cli")

# --- received SMS ------------------------------------------------------------------


def insert_inbound(
    session: Session,
    *,
    dedup_key: str,
    sender: str,
    receiver: str,
    text: str,
    gateway_id: str | None = None,
    gateway_time: str | None = None,
    received_at: datetime | None = None,
) -> int | None:
    """Insert a received SMS; its id, or None when ``dedup_key`` is already stored.

    ``INSERT … ON CONFLICT DO NOTHING`` on the unique key: two gateway retries racing on
    PostgreSQL cannot both get in. (A savepoint around a plain insert would do on
    PostgreSQL, but pysqlite commits a savepoint opened as a transaction's first
    statement when it is released, so the row would outlive a later rollback.)
    """
    values = {
        "dedup_key": dedup_key,
        "gateway_id": gateway_id,
        "sender": sender,
        "receiver": receiver,
        "text": text,
        "gateway_time": gateway_time,
        "received_at": received_at or utcnow(),
        "status": "received",
        "decisions": "[]",
    }
    connection = core(session)
    row = connection.execute(_insert_inbound(connection.dialect.name), values).first()
    return int(row[0]) if row else None


# Statements on the path of every SMS are built once: building them costs more than
# running them on SQLite.
_INBOUND = Inbound.__table__  # type: ignore[attr-defined]
_INSERTS: dict[str, Any] = {}


def _insert_inbound(dialect: str) -> Any:
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        maker = sqlite_insert if dialect == "sqlite" else pg_insert
        stmt = (maker(_INBOUND).on_conflict_do_nothing(index_elements=["dedup_key"])
                .returning(_INBOUND.c.id))
        _INSERTS[dialect] = stmt
    return stmt


def find_inbound(session: Session, dedup_key: str) -> Inbound | None:
    return session.exec(select(Inbound).where(Inbound.dedup_key == dedup_key)).first()


def get_inbound(session: Session, inbound_id: int) -> Inbound | None:
    return session.get(Inbound, inbound_id)


def record_decisions(
    session: Session,
    inbound_id: int,
    *,
    status: str,
    handled_by: str | None,
    decisions: Sequence[dict[str, Any]],
    rule: str | None = None,
) -> None:
    """Store every step's verdict on the Inbound row (JSON list, in order)."""
    core(session).execute(_RECORD, {"iid": inbound_id, "new_status": status, "by": handled_by,
                              "json": json.dumps(list(decisions), ensure_ascii=False),
                              "new_rule": rule})


_RECORD = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("iid"))
    .values(status=bindparam("new_status"), handled_by=bindparam("by"),
            decisions=bindparam("json"), rule=bindparam("new_rule"))
)


def handled_since(session: Session, number: str, step: str, since: datetime) -> int:
    """How many SMS from ``number`` the step ``step`` settled since ``since``."""
    stmt = (
        select(func.count())
        .select_from(Inbound)
        .where(Inbound.sender == number)
        .where(Inbound.handled_by == step)
        .where(col(Inbound.received_at) >= since)
    )
    return int(session.exec(stmt).one())


# --- surveys -------------------------------------------------------------------------


def open_session(session: Session, number: str) -> SurveySession | None:
    """The number's open survey session (the newest, should there ever be two)."""
    return session.execute(_OPEN_SESSION, {"number": number}).scalars().first()


_OPEN_SESSION = (
    select(SurveySession)
    .where(SurveySession.number == bindparam("number"))
    .where(SurveySession.status == "open")
    .order_by(col(SurveySession.id).desc())
    .limit(1)
)


def close_open_sessions(
    session: Session, number: str, status: str, now: datetime | None = None
) -> int:
    """Close every open session of ``number`` with ``status``; how many were open."""
    now = now or utcnow()
    result = session.execute(
        update(SurveySession)
        .where(col(SurveySession.number) == number)
        .where(col(SurveySession.status) == "open")
        .values(status=status, updated_at=now, closed_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def start_session(
    session: Session, number: str, survey: str, step: str, now: datetime | None = None
) -> int:
    """Open a session at question ``step``; any other open one is closed (``replaced``)."""
    now = now or utcnow()
    close_open_sessions(session, number, "replaced", now)
    row = SurveySession(
        number=number, survey=survey, step=step, started_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def advance_session(
    session: Session, session_id: int, *, step: str, retries: int, now: datetime | None = None
) -> None:
    """Move a session to question ``step`` (or count an invalid answer to it)."""
    session.execute(
        update(SurveySession)
        .where(col(SurveySession.id) == session_id)
        .values(step=step, retries=retries, updated_at=now or utcnow())
    )


def close_session(
    session: Session, session_id: int, status: str, now: datetime | None = None
) -> None:
    """Close one session: ``done``, ``abandoned``, ``timeout``, ``stopped``, ``replaced``."""
    now = now or utcnow()
    session.execute(
        update(SurveySession)
        .where(col(SurveySession.id) == session_id)
        .values(status=status, updated_at=now, closed_at=now)
    )


def add_answer(
    session: Session,
    session_id: int,
    *,
    survey: str,
    step: str,
    text: str,
    value: str,
    now: datetime | None = None,
) -> None:
    session.add(SurveyAnswer(session_id=session_id, survey=survey, step=step, text=text,
                             value=value, at=now or utcnow()))


def answers_of(session: Session, session_id: int) -> dict[str, str]:
    """Question id -> validated value, the latest answer winning."""
    stmt = (
        select(SurveyAnswer.step, SurveyAnswer.value)
        .where(SurveyAnswer.session_id == session_id)
        .order_by(col(SurveyAnswer.id))
    )
    return {step: value for step, value in session.exec(stmt)}


# --- who wrote to a number -------------------------------------------------------------


@dataclass(frozen=True)
class StaffWriter:
    """The person whose email last sent an SMS to a number."""

    user: str
    email_message_id: str | None
    subject: str
    request_id: int
    sent_at: datetime


def last_staff_writer(session: Session, number: str) -> StaffWriter | None:
    """The most recent request from a person (smtp, imap, cli) with an SMS to ``number``."""
    stmt = (
        select(SendRequestRow)
        .join(Message, col(Message.request_id) == col(SendRequestRow.id))
        .where(Message.to == number)
        .where(col(SendRequestRow.source).in_(STAFF_SOURCES))
        .where(SendRequestRow.status == "accepted")
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    row = session.exec(stmt).first()
    if row is None or row.id is None:
        return None
    return StaffWriter(user=row.user, email_message_id=row.email_message_id,
                       subject=row.subject, request_id=row.id, sent_at=row.created_at)


# --- replies and opt-outs --------------------------------------------------------------


def is_opted_out(session: Session, number: str) -> Any | None:
    """The number's opt-out entry (``number``, ``created_at``), None when it may receive
    SMS. A plain row: the ORM's identity map costs more than the query here."""
    return core(session).execute(_OPTED_OUT, {"number": number}).first()


_OPTED_OUT = select(OptOut.number, OptOut.created_at).where(  # type: ignore[call-overload]
    OptOut.number == bindparam("number"))


def sent_since(session: Session, number: str, since: datetime) -> int:
    """SMS sent (or queued) to ``number`` since ``since``, as the daily maximum counts."""
    return int(core(session).execute(_SENT, {"number": number, "since": since}).scalar_one())


_SENT = (
    select(func.count())
    .select_from(Message)
    .where(Message.to == bindparam("number"))
    .where(col(Message.created_at) >= bindparam("since"))
    .where(col(Message.status).not_in(queries.NOT_COUNTED))  # as the sends count
)


def queue_reply(
    session: Session,
    *,
    to: str,
    sender: str | None,
    text: str,
    encoding: str,
    segments: int,
    status: str = MessageStatus.QUEUED,
    reason: str | None = None,
) -> int:
    """Queue an SMS answering an inbound one (no send request); returns its id.

    ``status`` ``skipped``/``refused`` with a ``reason`` keeps a reply that may not go
    (opted out, daily maximum) visible instead of dropping it.
    """
    now = utcnow()
    final = now if status != MessageStatus.QUEUED else None
    row = core(session).execute(_QUEUE, {
        "to": to, "sender": sender or None, "text": text, "encoding": encoding,
        "segments": segments, "status": str(status), "reason": reason, "attempts": 0,
        "created_at": now, "updated_at": now, "final_at": final}).first()
    assert row is not None
    return int(row[0])


_MESSAGES = Message.__table__  # type: ignore[attr-defined]
_QUEUE = insert(_MESSAGES).returning(_MESSAGES.c.id)


def opt_out(session: Session, number: str, *, source: str = "sms", by: str | None = None,
            note: str | None = None) -> bool:
    """Put ``number`` on the opt-out list (history kept); False when it already was,
    including when a concurrent STOP from the same number got there first."""
    try:
        with session.begin_nested():
            added = queries.add_optout(session, number, source, by, note)
            session.flush()
    except IntegrityError:
        return False
    return added


def opt_in(session: Session, number: str, *, source: str = "sms", by: str | None = None,
           note: str | None = None) -> bool:
    """Take ``number`` off the opt-out list (history kept); False when it was not on it."""
    added = queries.remove_optout(session, number, source, by, note)
    session.flush()
    return added
