"""The credit balance in segments, and its ledger.

Credit is in use once the account row exists (``set_balance``/``add``). A send takes
its segments when it is queued (``reserve``: all or nothing, so two sends at once can
never both pass on the same credit) and marks its messages ``charged``; a message that
ends without reaching the operator's network (refused by the gateway, failed, cancelled)
gives its segments back once (``restore``), because ``charged`` is cleared as it does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from store.models import CreditAccount, CreditEntry, Message, utcnow

ACCOUNT_ID = 1
_CHUNK = 500


def balance(session: Session) -> int | None:
    """The segments left; None when credit is not in use (no account yet)."""
    table = CreditAccount.__table__  # type: ignore[attr-defined]
    # Core, not session.get: the identity map may hold a row read before a reservation.
    left = session.connection().execute(
        select(table.c.balance).where(table.c.id == ACCOUNT_ID)).scalar_one_or_none()
    return None if left is None else int(left)


def _locked_account(session: Session) -> CreditAccount:
    """The account row, locked until the transaction ends (created at 0 if missing)."""
    stmt = (sm_select(CreditAccount).where(CreditAccount.id == ACCOUNT_ID)
            .with_for_update().execution_options(populate_existing=True))
    account = session.exec(stmt).first()
    if account is None:
        account = CreditAccount(id=ACCOUNT_ID, balance=0)
        session.add(account)
        session.flush()
    return account


def set_balance(session: Session, segments: int, *, by: str | None = None) -> int:
    """Set the balance (an audit, a new contract); returns it."""
    account = _locked_account(session)
    change = segments - account.balance
    account.balance = segments
    account.alerted_below = None
    account.updated_at = utcnow()
    session.add(account)
    session.add(CreditEntry(change=change, balance=segments, reason="set", by=by))
    session.flush()
    return segments


def add(session: Session, segments: int, *, by: str | None = None) -> int:
    """Top up (or, negative, correct) the balance; returns the new balance."""
    account = _locked_account(session)
    account.balance += segments
    account.alerted_below = None
    account.updated_at = utcnow()
    session.add(account)
    session.add(CreditEntry(change=segments, balance=account.balance, reason="topup", by=by))
    session.flush()
    return account.balance


def reserve(session: Session, segments: int, *, request_id: int | None = None,
            by: str | None = None) -> int | None:
    """Take ``segments`` if that many are left: the new balance, or None (nothing taken).

    One conditional UPDATE, so concurrent sends (several processes on PostgreSQL) cannot
    spend the same credit twice.
    """
    entry = take(session, segments, request_id=request_id, by=by)
    return None if entry is None else entry.balance


def take(session: Session, segments: int, *, request_id: int | None = None,
         by: str | None = None) -> CreditEntry | None:
    """``reserve``, returning its ledger entry (the caller may set its request id once
    the request is written)."""
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
    entry = CreditEntry(change=-segments, balance=int(left), reason="send",
                        request_id=request_id, by=by)
    session.add(entry)
    return entry


def claim_alert(session: Session, threshold: int) -> int | None:
    """The balance, when it is under ``threshold`` and no alert went out since the last
    top-up; marks the alert as sent. None otherwise (one conditional UPDATE: two sends
    at once never both alert)."""
    table = CreditAccount.__table__  # type: ignore[attr-defined]
    left = session.connection().execute(
        update(table)
        .where(table.c.id == ACCOUNT_ID)
        .where(table.c.balance < threshold)
        .where(table.c.alerted_below.is_(None))
        .values(alerted_below=threshold)
        .returning(table.c.balance)
    ).scalar_one_or_none()
    return None if left is None else int(left)


def restore(session: Session, message_ids: Sequence[int], *, reason: str,
            request_id: int | None = None, statuses: Sequence[str] | None = None) -> int:
    """Give back the segments of these messages that were charged; returns how many.

    Only messages still ``charged`` count (and, given ``statuses``, only those in one of
    them), and they stop being charged here: a message is never given back twice,
    whatever path reports its failure.
    """
    if not message_ids:
        return 0
    table = Message.__table__  # type: ignore[attr-defined]
    given = 0
    ids = list(message_ids)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        # UPDATE ... RETURNING: the rows summed are exactly the rows uncharged, even
        # when another transaction restores some of them at the same time.
        stmt = (update(table).where(table.c.id.in_(chunk))
                .where(table.c.charged.is_(True)).values(charged=False)
                .returning(table.c.segments))
        if statuses is not None:
            stmt = stmt.where(table.c.status.in_(list(statuses)))
        given += sum(int(n) for n in session.connection().execute(stmt).scalars())
    if given:
        _give_back(session, given, reason=reason, request_id=request_id)
    return given


def restore_request(session: Session, request_id: int, *, status: str, reason: str) -> int:
    """Give back the charged messages of one request now in ``status``; returns how many."""
    table = Message.__table__  # type: ignore[attr-defined]
    segments = session.connection().execute(
        update(table).where(table.c.request_id == request_id)
        .where(table.c.status == status).where(table.c.charged.is_(True))
        .values(charged=False).returning(table.c.segments)
    ).scalars()
    given = sum(int(n) for n in segments)
    if given:
        _give_back(session, given, reason=reason, request_id=request_id)
    return given


def _give_back(session: Session, segments: int, *, reason: str,
               request_id: int | None) -> None:
    table = CreditAccount.__table__  # type: ignore[attr-defined]
    # Relative UPDATE, not read-modify-write: a send may be reserving at the same time.
    left = session.connection().execute(
        update(table).where(table.c.id == ACCOUNT_ID)
        .values(balance=table.c.balance + segments, updated_at=utcnow())
        .returning(table.c.balance)
    ).scalar_one_or_none()
    if left is not None:
        session.add(CreditEntry(change=segments, balance=int(left), reason=reason,
                                request_id=request_id))


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
