"""The dispatcher: claims due messages, submits them under a rate limit, records results.

A claimed row is ``sending`` with a lease (``lease_until``). Results are committed in
batches well inside that lease. If the process dies, rows still ``sending`` after their
lease become ``uncertain`` at the next start (``recover_stale``) and are never submitted
again: the call may have reached the gateway, and a delivery report will settle them.
On a clean stop, claims whose call never started are released at once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from gateway.drivers.base import Driver, OutgoingSms, PermanentError, TransientError
from gateway.ratelimit import RateLimiter
from sms.phones import mask
from store import queries
from store.db import Database
from store.models import Message, MessageStatus, utcnow

log = logging.getLogger(__name__)

#: Called once a message failed for good (after the failure is committed).
OnFinal = Callable[[Message], Awaitable[None] | None]

_FLUSH_INTERVAL = 0.02  # seconds a result may wait for others before its commit
_FLUSH_SIZE = 250  # results that trigger a commit at once
_MAX_CLAIM = 200  # rows per claim
_IDLE_POLL = 1.0  # the longest sleep when nothing is due
_RETRY_AFTER_CAP = 86400.0  # a provider's Retry-After beyond a day is a provider bug


@dataclass
class _Results:
    """Answers waiting for their commit."""

    submitted: list[tuple[int, str | None]] = field(default_factory=list)
    retries: list[tuple[int, datetime, str]] = field(default_factory=list)
    failures: list[tuple[Message, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.submitted) + len(self.retries) + len(self.failures)

    def write(self, session: Session) -> None:
        queries.record_submissions(session, self.submitted)
        queries.record_retries(session, self.retries)
        queries.record_failures(session, [(m.id or 0, why) for m, why in self.failures])

    def merge_front(self, older: _Results) -> None:
        self.submitted[:0] = older.submitted
        self.retries[:0] = older.retries
        self.failures[:0] = older.failures


def default_owner() -> str:
    """A lease owner name unique to this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Outbox:
    """Submits due messages through ``driver``; see the module docstring for the design."""

    def __init__(
        self,
        db: Database,
        driver: Driver,
        *,
        rate_per_second: float,
        concurrency: int = 20,
        max_attempts: int = 8,
        owner: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        backoff_base: float = 2.0,
        backoff_max: float = 600.0,
        on_final: OnFinal | None = None,
        default_sender: str = "",
        sole_dispatcher: bool = False,
    ) -> None:
        """``sole_dispatcher``: no other process dispatches from this database (SQLite),
        so at start every ``sending`` row was left by a dead process and is settled at
        once instead of after its lease."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.db = db
        self.driver = driver
        self.rate_per_second = rate_per_second
        self.concurrency = concurrency
        self.max_attempts = max(1, max_attempts)
        self.owner = owner or default_owner()
        self.lease = lease
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_final = on_final
        self.default_sender = default_sender
        self.sole_dispatcher = sole_dispatcher
        #: Messages the gateway accepted, counted when their result is committed.
        self.submitted_count = 0
        self._limiter = RateLimiter(rate_per_second)
        # Small claims: at most what can be in flight at once, so that after a crash only
        # rows whose call had really started are left uncertain.
        self._claim_size = max(1, min(_MAX_CLAIM, math.ceil(rate_per_second / 4), concurrency))
        self._inflight: set[asyncio.Task[None]] = set()
        self._callbacks: set[asyncio.Task[None]] = set()
        self._results = _Results()
        self._unreleased: list[int] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._have_results = asyncio.Event()
        self._results_full = asyncio.Event()

    # --- public ----------------------------------------------------------------------

    def wake(self) -> None:
        """New messages were queued: look for due work now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set, then hand back unstarted claims and finish."""
        self._stopping = asyncio.Event()
        relay = asyncio.create_task(self._relay_stop(stop))
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await self._recover(startup=True)
            recovered_at = time.monotonic()
            while not self._stopping.is_set():
                self._wake.clear()  # before the claim, so a wake() during it is not lost
                if time.monotonic() - recovered_at > self.lease.total_seconds():
                    # Another dispatcher (PostgreSQL) may have died holding claims.
                    await self._recover()
                    recovered_at = time.monotonic()
                try:
                    await self._release()
                    if await self._claim_and_submit():
                        continue
                    delay = await self._seconds_to_next_due()
                except Exception:
                    log.exception("outbox: database error; trying again in %.0f s", _IDLE_POLL)
                    delay = _IDLE_POLL
                await self._wait(self._wake, delay)
        finally:
            relay.cancel()
            await self._finish(flusher)

    async def drain(self, timeout: float) -> int:
        """Dispatch until nothing is due before ``timeout`` s from now; return how many
        messages the gateway accepted. Retries due within the time are waited for."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wall_deadline = utcnow() + timedelta(seconds=timeout)
        timer = loop.call_at(deadline, self._stop_now)
        flusher = asyncio.create_task(self._flush_loop())
        before = self.submitted_count
        try:
            await self._recover(startup=True)
            while not self._stopping.is_set():
                if await self._claim_and_submit():
                    continue
                if self._inflight:
                    self._slot_freed.clear()
                    await self._wait(self._slot_freed, _IDLE_POLL)
                    continue
                await self._flush()  # retries must be visible to next_due_at
                due = await self.db.run(queries.next_due_at)
                if due is None or due > wall_deadline:
                    break
                delay = (due - utcnow()).total_seconds()
                await self._wait(self._wake, min(max(delay, 0.005), _IDLE_POLL))
        finally:
            timer.cancel()
            await self._finish(flusher)
        return self.submitted_count - before

    # --- dispatching -----------------------------------------------------------------

    async def _recover(self, *, startup: bool = False) -> None:
        any_lease = startup and self.sole_dispatcher
        try:
            stale = await self.db.run(lambda s: queries.recover_stale(s, any_lease=any_lease))
        except Exception:
            # Not fatal: stale rows stay ``sending`` (never resent) until the next start.
            log.exception("outbox: could not check for interrupted calls")
            return
        if stale:
            log.warning(
                "outbox: %d message(s) were mid-call when a dispatcher stopped; marked "
                "uncertain, not resent",
                stale,
            )

    async def _claim_and_submit(self) -> int:
        """Claim one batch and start its calls; return how many rows were claimed."""
        owner, size, lease = self.owner, self._claim_size, self.lease
        batch = await self.db.run(lambda s: queries.claim_due(s, owner, size, lease))
        if not batch:
            return 0
        claimed_at = time.monotonic()
        # Past half the lease, a row is given back rather than risk a late call that a
        # restart elsewhere would already have marked uncertain.
        fresh_until = claimed_at + self.lease.total_seconds() / 2
        unstarted: list[int] = []
        for index, message in enumerate(batch):
            if not await self._acquire_slot_and_token() or time.monotonic() > fresh_until:
                unstarted = [m.id for m in batch[index:] if m.id is not None]
                break
            task = asyncio.create_task(self._submit(message))
            self._inflight.add(task)
            task.add_done_callback(self._call_done)
        self._unreleased.extend(unstarted)
        await self._release()
        return len(batch)

    async def _release(self) -> None:
        """Give back claims never started; kept for the next try if the database fails,
        since a claim left to its lease would end ``uncertain`` though never sent."""
        if not self._unreleased:
            return
        owner, ids = self.owner, list(self._unreleased)
        await self.db.run(lambda s: queries.release_claims(s, owner, ids))
        del self._unreleased[: len(ids)]
        log.info("outbox: released %d claimed message(s) not started", len(ids))

    async def _acquire_slot_and_token(self) -> bool:
        """Wait for a free call slot and a rate token; False when stopping first."""
        while len(self._inflight) >= self.concurrency:
            if self._stopping.is_set():
                return False
            self._slot_freed.clear()
            await self._slot_freed.wait()
        if self._stopping.is_set():
            return False
        delay = self._limiter.reserve()
        if delay > 0:
            await self._wait(self._stopping, delay)
        return not self._stopping.is_set()

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox: call task failed", exc_info=task.exception())

    async def _submit(self, message: Message) -> None:
        assert message.id is not None
        sms = OutgoingSms(
            id=message.id,
            to=message.to,
            sender=message.sender or self.default_sender,
            text=message.text,
            encoding=message.encoding,
        )
        try:
            gateway_id = await self.driver.submit(sms)
        except PermanentError as exc:
            self._fail(message, str(exc))
        except TransientError as exc:
            self._retry_or_fail(message, str(exc), getattr(exc, "retry_after", None))
        except Exception as exc:
            # A driver bug: retried like a transient failure, bounded by max_attempts.
            log.exception("outbox: driver %s raised on message %s", self.driver.name, message.id)
            self._retry_or_fail(message, f"driver error: {type(exc).__name__}: {exc}", None)
        else:
            if log.isEnabledFor(logging.DEBUG):  # masking costs more than the log line
                log.debug(
                    "outbox: message %s to %s submitted as %s", sms.id, mask(sms.to), gateway_id
                )
            self._add(lambda r: r.submitted.append((sms.id, gateway_id)))

    def _retry_or_fail(self, message: Message, reason: str, retry_after: float | None) -> None:
        attempts = message.attempts  # claim_due counted this try already
        if attempts >= self.max_attempts:
            self._fail(message, f"gave up after {attempts} attempts: {reason}")
            return
        delay = self.backoff_delay(attempts)
        if retry_after is not None:
            delay = max(delay, min(retry_after, _RETRY_AFTER_CAP))
        when = utcnow() + timedelta(seconds=delay)
        log.info(
            "outbox: message %s to %s: %s; try %d in %.1f s",
            message.id,
            mask(message.to),
            reason,
            attempts + 1,
            delay,
        )
        assert message.id is not None
        mid = message.id
        self._add(lambda r: r.retries.append((mid, when, reason)))

    def backoff_delay(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` tries: exponential, capped,
        with jitter so a gateway coming back is not hit by every message at once."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempts - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _fail(self, message: Message, reason: str) -> None:
        log.warning("outbox: message %s to %s failed: %s", message.id, mask(message.to), reason)
        self._add(lambda r: r.failures.append((message, reason)))

    # --- results -----------------------------------------------------------------------

    def _add(self, put: Callable[[_Results], None]) -> None:
        put(self._results)
        self._have_results.set()
        if len(self._results) >= _FLUSH_SIZE:
            self._results_full.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._have_results.wait()
            await self._wait(self._results_full, _FLUSH_INTERVAL)
            try:
                await self._flush()
            except Exception:
                # Kept for the next round; the lease leaves minutes for the database.
                log.exception("outbox: could not record results; retrying")
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        results, self._results = self._results, _Results()
        self._have_results.clear()
        self._results_full.clear()
        if not len(results):
            return
        try:
            await self.db.run(results.write)
        except BaseException:
            self._results.merge_front(results)
            self._have_results.set()
            raise
        self.submitted_count += len(results.submitted)
        if results.retries:
            self._wake.set()  # the next due time may now be sooner than the poll
        for message, reason in results.failures:
            message.status = MessageStatus.FAILED
            message.reason = reason
            self._notify(message)

    def _notify(self, message: Message) -> None:
        if self.on_final is None:
            return
        callback = self.on_final

        async def call() -> None:
            try:
                outcome = callback(message)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("outbox: on_final failed for message %s", message.id)

        task = asyncio.create_task(call())
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    # --- stopping ----------------------------------------------------------------------

    def _stop_now(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._slot_freed.set()

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop_now()

    async def _finish(self, flusher: asyncio.Task[None]) -> None:
        """Let calls in flight end (each bounded by the driver's timeout), then commit."""
        self._stop_now()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        for attempt in range(3):
            try:
                await self._release()
                await self._flush()
                break
            except Exception:
                log.exception("outbox: could not record results at stop (try %d)", attempt + 1)
                await asyncio.sleep(0.5)
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)

    async def _seconds_to_next_due(self) -> float:
        due = await self.db.run(queries.next_due_at)
        if due is None:
            return _IDLE_POLL
        return min(max((due - utcnow()).total_seconds(), 0.005), _IDLE_POLL)

    @staticmethod
    async def _wait(event: asyncio.Event, timeout: float) -> None:
        """Wait for ``event`` at most ``timeout`` seconds."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
