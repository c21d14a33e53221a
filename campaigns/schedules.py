"""Periodic and event sends, fired by APScheduler 3 with its job store in our database.

**The Schedule table is the truth; the job store is the timer.** Every change (add,
pause, resume, cancel, edit) is written to the ``schedules`` table first, from whichever
process makes it (the ``mail2sms schedules`` command is another process than the
server). The server's scheduler re-reads that table every ``SYNC_SECONDS`` (30 s) and
brings its jobs in line: one job per live schedule in the ``schedule_jobs`` table, a
CronTrigger in ``compliance.timezone``, paused jobs for paused schedules, no job for
cancelled or done ones. A change made by the command therefore reaches a running
server within 30 s, and a server started later sees it at once.

**Missed runs.** A run missed while the server was down is made once when it comes
back if it is less than ``GRACE`` (6 h) late; several missed runs are coalesced into
that one (the latest). A run later than that is skipped, logged as a warning, not
counted in ``runs``, and the schedule goes on from its next run. The same rule holds
for the job store's own catch-up (``misfire_grace_time``, ``coalesce=True``) and for
``run_due_now``, which every sync also makes.

**Once.** A run is claimed by a conditional update of the row (``revision``) before
anything is sent: the timer and the catch-up pass, or two servers on one PostgreSQL,
cannot both make it; a crash after the claim loses that run rather than repeating it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session

from campaigns.request import SendRequest
from campaigns.schedule_requests import requests_for
from campaigns.schedule_timing import (
    ScheduleProblem,
    check,
    first_at_or_after,
    latest_due,
    next_after,
    trigger_for,
)
from store import schedules
from store.db import Database
from store.models import Schedule

__all__ = ["GRACE", "JOBS_TABLE", "SYNC_SECONDS", "ScheduleProblem", "Scheduler", "fire"]

log = logging.getLogger("campaigns.schedules")

#: A missed run later than this is skipped, not made (see the module docstring).
GRACE = timedelta(hours=6)
#: How often the server re-reads the schedules table (changes from the command line).
SYNC_SECONDS = 30
#: APScheduler's table in our database.
JOBS_TABLE = "schedule_jobs"
_STORE = "schedules"

Submit = Callable[[SendRequest], Awaitable[Any]]
Clock = Callable[[], datetime]

#: The started scheduler: job store entries name a module-level function (they outlive
#: the process), so that function finds its collaborators here.
_active: Scheduler | None = None


async def fire(schedule_id: int) -> None:
    """The job function of every schedule: make the run that is due now."""
    if _active is None:
        log.warning("schedule #%d is due but no scheduler is started", schedule_id)
        return
    await _active.run_one(schedule_id, _active.clock())


def _job_id(schedule_id: int) -> str:
    return f"schedule-{schedule_id}"


class Scheduler:
    """Schedules as a service; usable without ``start`` (the command line) to edit them."""

    def __init__(self, db: Database, timezone: str, *, clock: Clock | None = None,
                 grace: timedelta = GRACE, sync_seconds: float = SYNC_SECONDS):
        self.db = db
        self.timezone = timezone
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.grace = grace
        self.sync_seconds = sync_seconds
        self._submit: Submit | None = None
        self._aps: AsyncIOScheduler | None = None
        self._syncs: set[asyncio.Task[None]] = set()

    # --- editing: the table first, then the jobs when running -----------------------

    def add(self, schedule: Schedule) -> int:
        check(schedule)
        schedule.next_run_at = first_at_or_after(schedule, self.timezone, self.clock())
        if schedule.next_run_at is None:
            raise ScheduleProblem("no run left: --until is in the past")
        schedule_id = self.db.run_sync(lambda s: schedules.insert(s, schedule))
        log.info("schedule #%d %r added, next run %s", schedule_id, schedule.name,
                 schedule.next_run_at)
        self._resync(schedule_id)
        return schedule_id

    def pause(self, schedule_id: int) -> Schedule:
        return self._change(schedule_id, {"status": "paused", "next_run_at": None},
                            allowed=("active", "paused"))

    def resume(self, schedule_id: int) -> Schedule:
        # runs missed while paused are not made: the next one is counted from now
        return self._change(schedule_id, {"status": "active"}, allowed=("paused", "active"),
                            recompute=True)

    def cancel(self, schedule_id: int) -> Schedule:
        return self._change(schedule_id, {"status": "cancelled", "next_run_at": None},
                            allowed=("active", "paused"))

    def edit(self, schedule_id: int, **changes: Any) -> Schedule:
        """Change any column of the schedule (text, at, every, weekday, day, repetitions,
        until, recipients, groups, category, sender, field, offset_days, group, name)."""
        unknown = set(changes) - set(Schedule.model_fields) | (
            set(changes) & {"id", "status", "runs", "revision", "next_run_at", "kind"})
        if unknown:
            raise ScheduleProblem(f"cannot edit {', '.join(sorted(unknown))}")
        return self._change(schedule_id, changes, allowed=("active", "paused"),
                            recompute=True)

    def list(self) -> list[Schedule]:
        return self.db.run_sync(schedules.list_all)

    def get(self, schedule_id: int) -> Schedule | None:
        return self.db.run_sync(lambda s: schedules.get(s, schedule_id))

    def _change(self, schedule_id: int, values: dict[str, Any], *, allowed: tuple[str, ...],
                recompute: bool = False) -> Schedule:
        def write(session: Session) -> Schedule:
            row = schedules.get(session, schedule_id)
            if row is None:
                raise ScheduleProblem(f"no schedule #{schedule_id}")
            if row.status not in allowed:
                raise ScheduleProblem(f"schedule #{schedule_id} is {row.status}")
            revision = row.revision
            for key, value in values.items():
                setattr(row, key, value)
            check(row)
            final = dict(values)
            if recompute and row.status == "active":
                final["next_run_at"] = first_at_or_after(row, self.timezone, self.clock())
                if final["next_run_at"] is None:
                    final["status"] = "done"
            if not schedules.change(session, schedule_id, revision, final):
                raise ScheduleProblem(f"schedule #{schedule_id} changed meanwhile: try again")
            updated = schedules.get(session, schedule_id)
            assert updated is not None
            return updated

        row = self.db.run_sync(write)
        self._resync(schedule_id)
        return row

    # --- running ------------------------------------------------------------------

    async def start(self, submit: Submit) -> None:
        """Start the timer in the running loop; brings the jobs in line with the table
        and makes what is due (missed-run policy) before returning."""
        global _active
        self._submit = submit
        grace = int(self.grace.total_seconds())
        self._aps = AsyncIOScheduler(
            jobstores={_STORE: SQLAlchemyJobStore(engine=self.db.engine,
                                                  tablename=JOBS_TABLE),
                       "default": MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": grace,
                          "max_instances": 1},
            timezone=ZoneInfo(self.timezone),
        )
        _active = self
        await self.sync()  # jobs in line before the timer looks at them
        self._aps.start()
        self._aps.add_job(self.sync, "interval", seconds=self.sync_seconds,
                          id="schedules-sync", jobstore="default", replace_existing=True)

    def shutdown(self) -> None:
        global _active
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
        self._aps = None
        if _active is self:
            _active = None

    def jobs(self) -> dict[int, datetime | None]:
        """Schedule id -> the job's next fire time (None: paused), from the job store."""
        if self._aps is None:
            return {}
        return {int(job.id.removeprefix("schedule-")): job.next_run_time
                for job in self._aps.get_jobs(jobstore=_STORE)}

    async def sync(self) -> None:
        """Bring the jobs in line with the table, then make what is due."""
        if self._aps is not None:
            rows = await self.db.run(lambda s: schedules.list_all(s))
            self._reconcile(rows)
        await self.run_due_now(self.clock())

    def sync_now(self) -> None:
        """Re-read the table at once, as the 30 s pass would (SIGHUP); needs the loop."""
        if self._aps is None:
            return
        task = asyncio.get_running_loop().create_task(self.sync(), name="schedules-sync")
        # the loop keeps only a weak reference to a task
        self._syncs.add(task)
        task.add_done_callback(self._synced)

    def _synced(self, task: asyncio.Task[None]) -> None:
        self._syncs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("schedules: the sync asked by SIGHUP failed", exc_info=task.exception())

    def _resync(self, schedule_id: int) -> None:
        if self._aps is not None:
            row = self.get(schedule_id)
            if row is not None:
                self._reconcile([row], complete=False)

    def _reconcile(self, rows: list[Schedule], *, complete: bool = True) -> None:
        assert self._aps is not None
        jobs = {job.id: job for job in self._aps.get_jobs(jobstore=_STORE)}
        for row in rows:
            assert row.id is not None
            job = jobs.pop(_job_id(row.id), None)
            if row.status not in schedules.LIVE_STATUSES:
                if job is not None:
                    job.remove()
                continue
            trigger = trigger_for(row, self.timezone)
            # the job fires when the table says: both agree whoever's clock computed it
            when = row.next_run_at if row.status == "active" else None
            if job is None or repr(job.trigger) != repr(trigger):
                self._aps.add_job(fire, trigger, args=[row.id], id=_job_id(row.id),
                                  name=row.name, jobstore=_STORE, replace_existing=True,
                                  next_run_time=when)
            elif job.next_run_time != when:
                job.modify(next_run_time=when)
        for orphan in jobs.values() if complete else ():
            orphan.remove()  # its row is gone

    async def run_due_now(self, now: datetime) -> list[int]:
        """Make every run due at ``now`` under the missed-run policy; the ids run."""
        ran = []
        for schedule_id in await self.db.run(lambda s: schedules.due(s, now)):
            if await self.run_one(schedule_id, now):
                ran.append(schedule_id)
        return ran

    async def run_one(self, schedule_id: int, now: datetime) -> bool:
        """Claim the run of ``schedule_id`` due at ``now`` and send it; False when there
        was none to make (not due, paused, made elsewhere, or skipped as too late)."""
        claimed = await self.db.run(lambda s: self._claim(s, schedule_id, now))
        if claimed is None:
            return False
        row, day = claimed
        if self._submit is None:
            log.error("schedule #%d: run claimed without a submit function", schedule_id)
            return False
        requests = await self.db.run(lambda s: requests_for(s, row, day))
        if not requests:
            log.info("schedule #%d %r: nobody to send to on %s", schedule_id, row.name, day)
        for request in requests:
            try:
                await self._submit(request)
            except Exception:  # one failing request must not stop the others
                log.exception("schedule #%d %r: a send failed", schedule_id, row.name)
        self._resync(schedule_id)
        return True

    def _claim(self, session: Session, schedule_id: int,
               now: datetime) -> tuple[Schedule, date] | None:
        row = schedules.get(session, schedule_id)
        if row is None or row.status != "active" or row.next_run_at is None \
                or row.next_run_at > now:
            return None
        occurrence = latest_due(row, self.timezone, row.next_run_at, now)
        following = next_after(row, self.timezone, now)
        late = now - occurrence
        make = late <= self.grace
        runs = row.runs + (1 if make else 0)
        values: dict[str, Any] = {"next_run_at": following}
        if make:
            values.update(runs=runs, last_run_at=now)
        if following is None or (row.repetitions is not None and runs >= row.repetitions):
            values.update(status="done", next_run_at=None)
        if not schedules.change(session, schedule_id, row.revision, values):
            return None  # made or edited meanwhile by another process
        if not make:
            log.warning("schedule #%d %r: the run of %s was missed by %s, more than the %s "
                        "allowed: skipped; next run %s", schedule_id, row.name,
                        occurrence.isoformat(), late, self.grace, following)
            return None
        return row, occurrence.astimezone(ZoneInfo(self.timezone)).date()


def targets(to: list[str]) -> tuple[str, str]:
    """Numbers and ``#Group`` names as the two JSON columns of a schedule."""
    numbers = [t for t in to if not t.startswith("#")]
    groups = [t[1:] for t in to if t.startswith("#")]
    return json.dumps(numbers, ensure_ascii=False), json.dumps(groups, ensure_ascii=False)

