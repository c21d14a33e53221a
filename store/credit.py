"""The credit balance in segments, and its ledger.

Credit is in use once the account row exists (``set_balance``/``add``). A send takes
its segments when it is queued (``reserve``: all or nothing, so two sends at once can
never both pass on the same credit) and marks its messages ``charged``; a message that
ends without reaching the operator's network (refused by the gateway, failed, cancelled)
gives its segments back once (``restore``), because ``charged`` is cleared as it does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from store.models import CreditAccount, CreditEntry, Message, utcnow

ACCOUNT_ID = 1
_CHUNK = 500


def balance(session: Session) -> int | None:
    """The segments left; None when credit is not in use."""
    account = session.get(CreditAccount, ACCOUNT_ID)
    return None if account is None else account.balance


def _account(session: Session) -> CreditAccount:
    account = session.get(CreditAccount, ACCOUNT_ID)
    if account is None:
        account = CreditAccount(id=ACCOUNT_ID, balance=0)
        session.add(account)
        session.flush()
    return account


def set_balance(session: Session, segments: int, *, by: str | None = None) -> int:
    """Set the balance (an audit, a new contract); returns it."""
    account = _account(session)
    change = segments - account.balance
    account.balance = segments
    account.alerted_below = None
    account.updated_at = utcnow()
    session.add(account)
    session.add(CreditEntry(change=change, balance=segments, reason="set", by=by))
    return segments


def add(session: Session, segments: int, *, by: str | None = None) -> int:
    """Top up (or, negative, correct) the balance; returns the new balance."""
    account = _account(session)
    account.balance += segments
    account.alerted_below = None
    account.updated_at = utcnow()
    session.add(account)
    session.add(CreditEntry(change=segments, balance=account.balance, reason="topup", by=by))
    return account.balance


def reserve(session: Session, segments: int, *, request_id: int | None = None,
            by: str | None = None) -> int | None:
    """Take ``segments`` if that many are left: the new balance, or None (nothing taken).

    One conditional UPDATE, so concurrent sends (several processes on PostgreSQL) cannot
    spend the same credit twice.
    """
    table = CreditAccount.__table__  # type: ignore[attr-defined]
    left = session.connection().execute(
        update(table)
        .where(table.c.id == ACCOUNT_ID)
        .where(table.c.balance >= segments)
        .values(balance=table.c.balance - segments, updated_at=utcnow())
        .returning(table.c.balance)
    ).scalar_one_or_none()
    if left is None:
        return None
    session.add(CreditEntry(change=-segments, balance=int(left), reason="send",
                            request_id=request_id, by=by))
    return int(left)


def restore(session: Session, message_ids: Sequence[int], *, reason: str) -> int:
    """Give back the segments of these messages that were charged; returns how many.

    Only messages still ``charged`` count, and they stop being charged here: a message
    is never given back twice, whatever path reports its failure.
    """
    if not message_ids:
        return 0
    table = Message.__table__  # type: ignore[attr-defined]
    given = 0
    ids = list(message_ids)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        given += int(session.connection().execute(
            select(func.coalesce(func.sum(table.c.segments), 0))
            .where(table.c.id.in_(chunk)).where(table.c.charged.is_(True))
        ).scalar_one())
        session.connection().execute(
            update(table).where(table.c.id.in_(chunk)).where(table.c.charged.is_(True))
            .values(charged=False)
        )
    if given:
        account = session.get(CreditAccount, ACCOUNT_ID)
        if account is not None:
            account.balance += given
            account.updated_at = utcnow()
            session.add(account)
            session.add(CreditEntry(change=given, balance=account.balance, reason=reason))
    return given


def charge(session: Session, request_id: int) -> None:
    """Mark the waiting messages of a request as charged (after ``reserve``)."""
    table = Message.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        update(table).where(table.c.request_id == bindparam("rid"))
        .where(table.c.status.in_(("queued", "deferred", "paused")))
        .values(charged=True),
        {"rid": request_id},
    )


def history(session: Session, limit: int = 50) -> list[CreditEntry]:
    """The latest ledger entries, newest first."""
    stmt = sm_select(CreditEntry).order_by(col(CreditEntry.id).desc()).limit(limit)
    return list(session.exec(stmt))
