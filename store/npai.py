"""Numbers the operators report unassigned (NPAI): counted, flagged, reviewed, cleared.

A delivery report saying the number is not assigned adds one to its count; a delivered
report sets it back to 0. At ``FLAG_AFTER`` in a row the number is flagged, and sends to
it are skipped until an admin clears it (``mail2sms npai clear``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, update
from sqlmodel import Session, col, select

from store.db import core
from store.models import NumberHealth, utcnow

#: Unassigned reports in a row that flag a number.
FLAG_AFTER = 2

_REASON_CHARS = 300


def report_unassigned(session: Session, number: str, reason: str | None,
                      *, now: datetime | None = None) -> NumberHealth:
    """Count one more "unassigned" report for ``number``; flags it at ``FLAG_AFTER``.

    The row is locked while counting, so two reports at once are both counted.
    """
    now = now or utcnow()
    stmt = (select(NumberHealth).where(NumberHealth.number == number).with_for_update()
            .execution_options(populate_existing=True))
    row = session.exec(stmt).first()
    if row is None:
        row = NumberHealth(number=number, unassigned_in_row=0)
    row.unassigned_in_row += 1
    row.last_reason = (reason or "unassigned")[:_REASON_CHARS]
    row.updated_at = now
    if row.unassigned_in_row >= FLAG_AFTER and row.flagged_at is None:
        row.flagged_at = now
    session.add(row)
    session.flush()
    return row


def report_delivered(session: Session, number: str) -> bool:
    """A report of delivery: the number is in use; its count and flag are cleared.

    One UPDATE that matches nothing for the usual number (never reported unassigned),
    which keeps the delivered-report path as cheap as it was. True when it changed one.
    """
    result = core(session).execute(_DELIVERED, {"num": number, "now": utcnow()})
    return bool(result.rowcount)


_HEALTH = NumberHealth.__table__  # type: ignore[attr-defined]
# built once: a report per SMS sent comes back, and building it cost more than running it
_DELIVERED = (
    update(_HEALTH)
    .where(_HEALTH.c.number == bindparam("num"))
    .where(or_(_HEALTH.c.unassigned_in_row > 0, _HEALTH.c.flagged_at.is_not(None)))
    .values(unassigned_in_row=0, flagged_at=None, updated_at=bindparam("now"))
)


def flagged_numbers(session: Session) -> set[str]:
    """Every flagged number: few, so one query whatever the size of the send."""
    stmt = select(NumberHealth.number).where(col(NumberHealth.flagged_at).is_not(None))
    return set(session.exec(stmt))


def listing(session: Session, *, include_unflagged: bool = False) -> list[NumberHealth]:
    """Flagged numbers (and, with ``include_unflagged``, those with one report so far),
    flagged first, then by number."""
    stmt = select(NumberHealth)
    if include_unflagged:
        stmt = stmt.where(or_(col(NumberHealth.flagged_at).is_not(None),
                              col(NumberHealth.unassigned_in_row) > 0))
    else:
        stmt = stmt.where(col(NumberHealth.flagged_at).is_not(None))
    rows = list(session.exec(stmt))
    rows.sort(key=lambda r: (r.flagged_at is None, r.number))
    return rows


def clear(session: Session, number: str) -> bool:
    """The number was reassigned or corrected: sent to again. False when it was not
    flagged nor counted."""
    row = session.get(NumberHealth, number)
    if row is None or (row.flagged_at is None and row.unassigned_in_row == 0):
        return False
    row.unassigned_in_row = 0
    row.flagged_at = None
    row.updated_at = utcnow()
    session.add(row)
    return True
