"""Engine and schema. SQLite runs in WAL mode; PostgreSQL through the same URL key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, create_engine

from store import models  # noqa: F401  (registers the tables)

T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash
    # can lose the last transactions, which is the usual trade for mail servers too.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, *, create: bool = True) -> Engine:
    """Open the database at ``url`` and create missing tables."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    if create:
        SQLModel.metadata.create_all(engine)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def core(session: Session) -> Connection:
    """The session's connection, for prepared Core statements on the path of every SMS
    or report: the ORM's execute costs more than the statement itself on SQLite.
    Pending objects are flushed first, as the ORM would."""
    session.flush()
    return session.connection()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class Database:
    """The engine plus the threads that run its blocking calls for asyncio code.

    SQLite gets one worker thread: it allows one writer at a time anyway, and one
    thread keeps ``database is locked`` out of the picture. PostgreSQL gets several.
    """

    def __init__(self, url: str, *, create: bool = True, workers: int | None = None):
        import concurrent.futures

        self.url = url
        self.engine = make_engine(url, create=create)
        if workers is None:
            workers = 1 if is_sqlite(self.engine) else 4
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="db"
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction, in the calling thread."""
        with session_scope(self.engine) as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction on a database thread."""
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run_sync, fn)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
