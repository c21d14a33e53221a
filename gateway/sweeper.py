"""Submitted messages that never got a final delivery report become ``late``."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from store import queries
from store.db import Database
from store.models import utcnow

log = logging.getLogger(__name__)


async def sweep_late(
    db: Database, now: datetime | None = None, after: timedelta = timedelta(hours=48)
) -> int:
    """Mark messages submitted more than ``after`` ago without a final report; return how many."""
    older_than = (now or utcnow()) - after
    count = await db.run(lambda s: queries.mark_late(s, older_than))
    if count:
        log.info("sweeper: %d message(s) without a delivery report after %s are late", count, after)
    return count


async def run_sweeper(db: Database, stop: asyncio.Event, interval: float = 300) -> None:
    """Sweep at start, then every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await sweep_late(db)
        except Exception:
            log.exception("sweeper: could not mark late messages")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
