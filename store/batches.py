"""Many small writes arriving at once, a batch per database transaction.

Gateways call the webhooks once per SMS or report, hundreds of times a second. One
thread hop and one commit each cost more than the write itself; callers waiting at the
same moment share one transaction instead. Should the batch fail, each item is tried
again in a transaction of its own, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlmodel import Session

from store.db import Database

T = TypeVar("T")
R = TypeVar("R")

BATCH = 64  # items in one transaction at most


class Batcher(Generic[T, R]):
    """``await batcher(item)`` runs ``write(session, item)`` and returns its result once
    the transaction holding it has committed. Items are written in arrival order, each
    seeing the ones before it."""

    def __init__(self, db: Database, write: Callable[[Session, T], R], *,
                 write_all: Callable[[Session, list[T]], list[R]] | None = None,
                 size: int = BATCH) -> None:
        """``write_all``: the batch in one call (to read what the batch needs at once),
        one result per item in order; ``write`` still serves items tried on their own."""
        self.db = db
        self.write = write
        self.write_all = write_all or self._write_each
        self.size = size
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self.size], self._waiting[self.size:]
            items = [item for item, _ in batch]
            try:
                try:
                    results = await self.db.run(functools.partial(_call, self.write_all, items))
                except Exception:
                    # rolled back whole: each again on its own
                    for item, future in batch:
                        await self._alone(item, future)
                    continue
            except BaseException as exc:  # cancelled at shutdown: nobody is left waiting
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _write_each(self, session: Session, items: list[T]) -> list[R]:
        return [self.write(session, item) for item in items]

    async def _alone(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            result = await self.db.run(lambda s: self.write(s, item))
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)


def _call(write_all: Callable[[Session, list[T]], list[R]], items: list[T],
          session: Session) -> list[R]:
    return write_all(session, items)
