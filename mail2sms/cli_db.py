"""One database call from a command: open, run in a transaction, close."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from mail2sms.config import Config
from store.db import Database

T = TypeVar("T")


def run_once(cfg: Config, fn: Callable[[Session], T]) -> T:
    """``fn`` in one committed transaction on the configured database."""
    db = Database(cfg.database.url)
    try:
        return db.run_sync(fn)
    finally:
        db.close()
