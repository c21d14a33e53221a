"""Periodic and event sends (the ``schedules`` table) and the contacts an event send reaches."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from store.models import Contact, ContactGroup, GroupMember, Schedule, utcnow

#: Statuses in which a schedule still has a job in the scheduler.
LIVE_STATUSES = ("active", "paused")
#: Standard contact fields templates see (custom fields never hide them).
_STANDARD = ("first_name", "last_name", "email", "birthday")


def aware(value: datetime | None) -> datetime | None:
    """Aware UTC: SQLite hands timestamps back without their zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fix(session: Session, row: Schedule) -> Schedule:
    """Detached, timestamps aware: rows are read here and written only by ``change``."""
    session.expunge(row)
    row.next_run_at = aware(row.next_run_at)
    row.last_run_at = aware(row.last_run_at)
    row.created_at = aware(row.created_at) or row.created_at
    row.updated_at = aware(row.updated_at) or row.updated_at
    return row


def insert(session: Session, schedule: Schedule) -> int:
    session.add(schedule)
    session.flush()
    assert schedule.id is not None
    return schedule.id


def get(session: Session, schedule_id: int) -> Schedule | None:
    row = session.get(Schedule, schedule_id)
    return _fix(session, row) if row is not None else None


def list_all(session: Session, statuses: tuple[str, ...] | None = None) -> list[Schedule]:
    stmt = select(Schedule).order_by(col(Schedule.id))
    if statuses:
        stmt = stmt.where(col(Schedule.status).in_(statuses))
    return [_fix(session, row) for row in session.exec(stmt).all()]


def due(session: Session, now: datetime) -> list[int]:
    """Active schedules whose next run is at or before ``now``."""
    stmt = (select(Schedule.id).where(Schedule.status == "active")
            .where(col(Schedule.next_run_at) <= now).order_by(col(Schedule.next_run_at)))
    return [i for i in session.exec(stmt) if i is not None]


def change(session: Session, schedule_id: int, revision: int, values: dict[str, Any]) -> bool:
    """Write ``values`` only if nobody changed the row since ``revision`` was read.

    This is what makes a run happen once when two processes (or the timer and the
    catch-up pass) reach the same schedule, and what keeps an edit from being lost.
    """
    stmt = (
        update(Schedule)
        .where(col(Schedule.id) == schedule_id, col(Schedule.revision) == revision)
        .values(**values, revision=revision + 1, updated_at=utcnow())
    )
    result = session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def month_days(day: date) -> list[tuple[int, int]]:
    """The (month, day) pairs celebrated on ``day``: 29 February falls on the 28th in
    years without one."""
    pairs = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        pairs.append((2, 29))
    return pairs


def month_day(value: Any) -> tuple[int, int] | None:
    """Month and day of a stored date: ``YYYY-MM-DD``, ``--MM-DD`` or ``DD/MM/YYYY``."""
    text = str(value or "").strip()
    try:
        if len(text) >= 10 and text[4] == "-" and text[7] == "-":
            return int(text[5:7]), int(text[8:10])
        if text.startswith("--") and len(text) == 7:
            return int(text[2:4]), int(text[5:7])
        if len(text) >= 10 and text[2] == "/" and text[5] == "/":
            return int(text[3:5]), int(text[0:2])
    except ValueError:
        return None
    return None


def contact_fields(contact: Contact) -> dict[str, Any]:
    """What a template sees for this contact; unknown standard fields stay undefined so
    the template's rule for missing fields applies."""
    try:
        custom = json.loads(contact.fields or "{}")
    except ValueError:
        custom = {}
    fields: dict[str, Any] = {k: v for k, v in custom.items() if k not in _STANDARD} \
        if isinstance(custom, dict) else {}
    for name in _STANDARD:
        if getattr(contact, name):
            fields[name] = getattr(contact, name)
    fields["number"] = contact.number
    return fields


def contacts_on(
    session: Session, field: str, day: date, group: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Contacts whose date ``field`` (year ignored) falls on ``day``, optionally only the
    members of ``group``: (number, template fields), by number."""
    pairs = month_days(day)
    stmt = select(Contact)
    if field == "birthday":
        # narrowed in SQL; month_day below is the judge
        stmt = stmt.where(or_(*(
            cond for m, d in pairs for cond in (
                col(Contact.birthday).like(f"%-{m:02d}-{d:02d}%"),
                col(Contact.birthday).like(f"{d:02d}/{m:02d}/%"),
            )
        )))
    else:
        stmt = stmt.where(col(Contact.fields).like(f'%"{field}"%'))
    if group is not None:
        stmt = (stmt.join(GroupMember, col(GroupMember.contact_id) == col(Contact.id))
                .join(ContactGroup, col(ContactGroup.id) == col(GroupMember.group_id))
                .where(ContactGroup.name == group))
    out = []
    for contact in session.exec(stmt.order_by(col(Contact.number))):
        fields = contact_fields(contact)
        if month_day(fields.get(field)) in pairs:
            out.append((contact.number, fields))
    return out


def group_exists(session: Session, name: str) -> bool:
    return session.exec(select(ContactGroup.id).where(ContactGroup.name == name)).first() \
        is not None
