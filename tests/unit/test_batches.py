"""Writes waiting together share a transaction; a bad one fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from store.batches import Batcher
from store.db import Database
from store.models import OptOut


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'batches.db'}")
    yield database
    database.close()


def _opt_out(session: Session, number: str) -> str:
    if number.endswith("13"):
        raise ValueError(f"{number}: unlucky")
    session.add(OptOut(number=number))
    session.flush()
    return number


def _stored(db: Database) -> list[str]:
    return db.run_sync(lambda s: sorted(s.exec(select(OptOut.number))))


async def test_items_waiting_together_commit_together(db: Database) -> None:
    batcher = Batcher(db, _opt_out, size=8)
    numbers = [f"+336000000{i:02d}" for i in range(20)]
    transactions = 0
    run = db.run

    async def counting(fn):  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return await run(fn)

    db.run = counting  # type: ignore[method-assign]
    results = await asyncio.gather(*(batcher(n) for n in numbers if not n.endswith("13")))
    assert results == [n for n in numbers if not n.endswith("13")]
    assert transactions == 3  # 19 items, 8 a transaction
    assert _stored(db) == results


async def test_a_bad_item_fails_alone_and_the_others_are_kept(db: Database) -> None:
    batcher = Batcher(db, _opt_out)
    numbers = [f"+336000000{i:02d}" for i in range(10, 17)]
    results = await asyncio.gather(*(batcher(n) for n in numbers), return_exceptions=True)
    assert [type(r).__name__ if isinstance(r, Exception) else r for r in results] == [
        "+33600000010", "+33600000011", "+33600000012", "ValueError",
        "+33600000014", "+33600000015", "+33600000016"]
    assert "+33600000013: unlucky" in str(results[3])
    assert _stored(db) == [n for n in numbers if n != "+33600000013"]
