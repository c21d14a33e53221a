"""Periodic and event sends on SQLite: runs driven by an explicit clock, never wall time.

Every run goes through the real planner and queue into ``messages`` rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import select

import campaigns.schedules as schedules_module
from campaigns.plan import Plan, UserPolicy
from campaigns.queue import queue_request
from campaigns.request import SendRequest
from campaigns.schedule_timing import ScheduleProblem, first_at_or_after, next_after
from campaigns.schedules import GRACE, JOBS_TABLE, Scheduler, fire
from sms.config import ComplianceConfig
from store import schedules as store
from store.db import Database
from store.models import Contact, ContactGroup, GroupMember, Message, Schedule

PARIS = ZoneInfo("Europe/Paris")
TZ = "Europe/Paris"
COMPLIANCE = ComplianceConfig()
ALICE = "alice@example.com"


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness:
    """A database, a clock, a scheduler, and the plans its runs produced."""

    def __init__(self, path: Path, now: datetime):
        self.db = Database(f"sqlite:///{path / 'mail2sms.db'}")
        self.clock = Clock(now)
        self.scheduler = Scheduler(self.db, TZ, clock=self.clock)
        self.plans: list[Plan] = []

    async def submit(self, request: SendRequest) -> Plan:
        plan, _ = await self.db.run(lambda s: queue_request(
            s, request, policy=UserPolicy(email=request.user), compliance=COMPLIANCE,
            shortcode="36105", now=self.clock()))
        self.plans.append(plan)
        return plan

    async def at(self, when: datetime) -> list[int]:
        self.clock.now = when
        return await self.scheduler.run_due_now(when)

    def messages(self) -> list[Message]:
        return self.db.run_sync(lambda s: list(s.exec(select(Message).order_by(Message.id))))

    def row(self, schedule_id: int) -> Schedule:
        row = self.scheduler.get(schedule_id)
        assert row is not None
        return row


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path, paris(2026, 11, 23, 8, 0))  # Monday
    yield harness
    harness.scheduler.shutdown()
    harness.db.close()


#: Started schedulers also have APScheduler's wall-clock timer: their tests live in a
#: future where it has nothing to do, so only the explicit clock makes runs.
LIVE = 2037  # 23 November 2037 is a Monday too


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path, paris(LIVE, 11, 23, 8, 0))
    yield harness
    harness.scheduler.shutdown()
    harness.db.close()


def periodic(**values: Any) -> Schedule:
    base: dict[str, Any] = {"name": "rappel", "user": ALICE, "kind": "periodic",
                            "text": "Rappel: réunion", "recipients": '["0612345678"]',
                            "every": "daily", "at": "09:00"}
    base.update(values)
    return Schedule(**base)


def event(**values: Any) -> Schedule:
    base: dict[str, Any] = {"name": "anniv", "user": ALICE, "kind": "event",
                            "text": "Joyeux anniversaire {{ first_name }} !",
                            "field": "birthday", "offset_days": 0, "at": "10:00"}
    base.update(values)
    return Schedule(**base)


def add_contact(h: Harness, number: str, first_name: str | None, birthday: str | None,
                groups: tuple[str, ...] = (), **custom: str) -> None:
    def write(session: Any) -> None:
        contact = Contact(number=number, first_name=first_name, birthday=birthday,
                          fields=json.dumps(custom))
        session.add(contact)
        session.flush()
        for name in groups:
            group = session.exec(select(ContactGroup).where(ContactGroup.name == name)).first()
            if group is None:
                group = ContactGroup(name=name)
                session.add(group)
                session.flush()
            session.add(GroupMember(group_id=group.id, contact_id=contact.id))
    h.db.run_sync(write)


# --- periodic -------------------------------------------------------------------------


async def test_daily_fires_at_its_time_on_two_days_then_stops_after_two_times(
        h: Harness) -> None:
    sid = h.scheduler.add(periodic(repetitions=2))
    h.scheduler._submit = h.submit
    assert h.row(sid).next_run_at == paris(2026, 11, 23, 9, 0)
    assert await h.at(paris(2026, 11, 23, 8, 59)) == []
    assert await h.at(paris(2026, 11, 23, 9, 0)) == [sid]
    assert await h.at(paris(2026, 11, 23, 9, 1)) == []  # once per occurrence
    assert h.row(sid).next_run_at == paris(2026, 11, 24, 9, 0)
    assert await h.at(paris(2026, 11, 24, 9, 0)) == [sid]
    row = h.row(sid)
    assert (row.status, row.runs, row.next_run_at) == ("done", 2, None)
    assert row.last_run_at == paris(2026, 11, 24, 9, 0)
    assert await h.at(paris(2026, 11, 25, 9, 0)) == []
    messages = h.messages()
    assert [(m.to, m.status, m.text) for m in messages] == [
        ("+33612345678", "queued", "Rappel: réunion")] * 2


async def test_until_a_date_runs_through_that_day_then_is_done(h: Harness) -> None:
    sid = h.scheduler.add(periodic(until="2026-11-24"))
    h.scheduler._submit = h.submit
    assert await h.at(paris(2026, 11, 23, 9, 0)) == [sid]
    assert await h.at(paris(2026, 11, 24, 9, 0)) == [sid]
    assert h.row(sid).status == "done"
    assert len(h.messages()) == 2
    with pytest.raises(ScheduleProblem, match="until"):
        h.scheduler.add(periodic(until="2026-11-01"))


def test_weekly_and_monthly_keep_their_wall_clock_time_across_dst() -> None:
    weekly = periodic(every="weekly", weekday="sun", at="09:00")
    before = first_at_or_after(weekly, TZ, paris(2026, 3, 20))
    assert before == paris(2026, 3, 22, 9, 0) == datetime(2026, 3, 22, 8, 0, tzinfo=UTC)
    after = next_after(weekly, TZ, before)
    assert after == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # CEST from 29 March
    monthly = periodic(every="monthly", day=31, at="18:30")
    runs = [first_at_or_after(monthly, TZ, paris(2026, 9, 1))]
    for _ in range(2):
        runs.append(next_after(monthly, TZ, runs[-1]))  # type: ignore[arg-type]
    # no 31 September or November; 31 October is after the end of DST (25 October)
    assert runs == [paris(2026, 10, 31, 18, 30), paris(2026, 12, 31, 18, 30),
                    paris(2027, 1, 31, 18, 30)]
    assert runs[0] == datetime(2026, 10, 31, 17, 30, tzinfo=UTC)


async def test_a_marketing_periodic_send_on_sunday_is_deferred_by_the_planner(
        h: Harness) -> None:
    sid = h.scheduler.add(periodic(every="weekly", weekday="sun", at="10:00",
                                   category="marketing"))
    h.scheduler._submit = h.submit
    assert await h.at(paris(2026, 11, 29, 10, 0)) == [sid]
    [message] = h.messages()
    assert message.status == "deferred"
    assert store.aware(message.not_before) == paris(2026, 11, 30, 8, 0)


async def test_paused_schedules_do_not_fire_and_resume_counts_from_now(h: Harness) -> None:
    sid = h.scheduler.add(periodic())
    h.scheduler._submit = h.submit
    assert h.scheduler.pause(sid).status == "paused"
    assert await h.at(paris(2026, 11, 23, 9, 0)) == []
    assert await h.at(paris(2026, 11, 24, 9, 0)) == []
    h.clock.now = paris(2026, 11, 24, 12, 0)
    resumed = h.scheduler.resume(sid)
    assert (resumed.status, resumed.next_run_at) == ("active", paris(2026, 11, 25, 9, 0))
    assert await h.at(paris(2026, 11, 25, 9, 0)) == [sid]
    assert len(h.messages()) == 1


async def test_edit_changes_text_and_time(h: Harness) -> None:
    sid = h.scheduler.add(periodic())
    h.scheduler._submit = h.submit
    edited = h.scheduler.edit(sid, text="Nouveau texte", at="11:15")
    assert edited.next_run_at == paris(2026, 11, 23, 11, 15)
    assert await h.at(paris(2026, 11, 23, 11, 15)) == [sid]
    assert h.messages()[0].text == "Nouveau texte"
    with pytest.raises(ScheduleProblem, match="HH:MM"):
        h.scheduler.edit(sid, at="25:00")
    with pytest.raises(ScheduleProblem, match="cannot edit"):
        h.scheduler.edit(sid, runs=0)


# --- the timer, the job store, restarts --------------------------------------------------


async def test_cancelled_schedules_lose_their_job_and_never_fire(live: Harness) -> None:
    await live.scheduler.start(live.submit)
    sid = live.scheduler.add(periodic())
    other = live.scheduler.add(periodic(name="autre", at="09:30"))
    assert set(live.scheduler.jobs()) == {sid, other}
    assert live.scheduler.cancel(sid).status == "cancelled"
    assert set(live.scheduler.jobs()) == {other}
    assert await live.at(paris(LIVE, 11, 23, 9, 45)) == [other]
    with pytest.raises(ScheduleProblem, match="cancelled"):
        live.scheduler.resume(sid)


async def test_the_job_function_makes_the_due_run(live: Harness) -> None:
    await live.scheduler.start(live.submit)
    sid = live.scheduler.add(periodic())
    live.clock.now = paris(LIVE, 11, 23, 9, 0)
    await fire(sid)  # what the job store's timer calls
    await fire(sid)
    assert live.row(sid).runs == 1 and len(live.messages()) == 1


async def test_changes_from_another_process_reach_the_running_scheduler_at_sync(
        live: Harness) -> None:
    await live.scheduler.start(live.submit)
    sid = live.scheduler.add(periodic())
    # the command line: its own Scheduler, never started, on the same database
    command = Scheduler(live.db, TZ, clock=live.clock)
    command.pause(sid)
    added = command.add(periodic(name="du terminal", at="10:00"))
    assert live.scheduler.jobs()[sid] is not None  # not seen before the sync
    await live.scheduler.sync()
    jobs = live.scheduler.jobs()
    assert jobs[sid] is None and jobs[added] == paris(LIVE, 11, 23, 10, 0)
    command.cancel(added)
    await live.scheduler.sync()
    assert set(live.scheduler.jobs()) == {sid}


async def test_a_new_scheduler_on_the_same_database_sees_the_jobs(tmp_path: Path) -> None:
    first = Harness(tmp_path, paris(LIVE, 11, 23, 8, 0))
    await first.scheduler.start(first.submit)
    sid = first.scheduler.add(periodic(every="weekly", weekday="fri", at="17:00"))
    first.scheduler.pause(first.scheduler.add(periodic(name="en pause")))
    first.scheduler.shutdown()
    first.db.close()

    second = Harness(tmp_path, paris(LIVE, 11, 23, 8, 5))
    try:
        stored = second.db.run_sync(lambda s: s.execute(text(
            f"SELECT id, next_run_time FROM {JOBS_TABLE} ORDER BY id")).all())
        # the job store kept both jobs: the active one with its time, the paused without
        assert [(i, t is None) for i, t in stored] == [
            (f"schedule-{sid}", False), (f"schedule-{sid + 1}", True)]
        assert {r.name: r.status for r in second.scheduler.list()} == {
            "rappel": "active", "en pause": "paused"}
        await second.scheduler.start(second.submit)
        jobs = second.scheduler.jobs()
        assert jobs[sid] == paris(LIVE, 11, 27, 17, 0) and list(jobs.values())[1] is None
        assert await second.at(paris(LIVE, 11, 27, 17, 0)) == [sid]
    finally:
        second.scheduler.shutdown()
        second.db.close()


async def test_a_missed_run_is_made_once_inside_the_grace_time(h: Harness) -> None:
    sid = h.scheduler.add(periodic())
    h.scheduler._submit = h.submit
    # down from before 09:00 until 09:00 + grace: the run is made at start, once
    assert await h.at(paris(2026, 11, 23, 9, 0) + GRACE) == [sid]
    row = h.row(sid)
    assert (row.runs, row.next_run_at) == (1, paris(2026, 11, 24, 9, 0))


async def test_missed_runs_coalesce_and_a_run_beyond_the_grace_time_is_skipped(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    sid = h.scheduler.add(periodic())
    h.scheduler._submit = h.submit
    # down three days; back at 10:00: the runs of the 23rd and 24th are lost, the 25th's
    # (1 h late) is made once
    assert await h.at(paris(2026, 11, 25, 10, 0)) == [sid]
    assert h.row(sid).runs == 1 and len(h.messages()) == 1
    # back at 09:00 + grace + 1 min on the 26th: skipped, logged, not counted
    assert await h.at(paris(2026, 11, 26, 9, 0) + GRACE + timedelta(minutes=1)) == []
    row = h.row(sid)
    assert (row.runs, row.next_run_at, row.status) == (1, paris(2026, 11, 27, 9, 0), "active")
    assert "missed" in caplog.text and len(h.messages()) == 1


# --- event sends -----------------------------------------------------------------------


async def test_birthday_send_reaches_only_todays_birthdays_personalised(h: Harness) -> None:
    add_contact(h, "+33611111111", "Léa", "1990-11-24")
    add_contact(h, "+33622222222", "Marc", "1985-11-24", groups=("clients",))
    add_contact(h, "+33633333333", "Zoé", "1990-11-25")
    add_contact(h, "+33644444444", None, "2001-11-24")  # no first name: skipped, told why
    add_contact(h, "+33655555555", "Paul", None)
    sid = h.scheduler.add(event())
    h.scheduler._submit = h.submit
    assert await h.at(paris(2026, 11, 24, 10, 0)) == [sid]
    got = {m.to: (m.status, m.text) for m in h.messages()}
    assert got["+33611111111"] == ("queued", "Joyeux anniversaire Léa !")
    assert got["+33622222222"] == ("queued", "Joyeux anniversaire Marc !")
    assert got["+33644444444"][0] == "skipped"
    assert set(got) == {"+33611111111", "+33622222222", "+33644444444"}


async def test_event_days_before_within_a_group_and_a_custom_field(h: Harness) -> None:
    add_contact(h, "+33611111111", "Léa", "1990-11-26", groups=("clients",))
    add_contact(h, "+33622222222", "Marc", "1985-11-26")
    add_contact(h, "+33633333333", "Zoé", None, renewal="2025-11-30")
    before = h.scheduler.add(event(offset_days=-2, group="clients"))
    renewal = h.scheduler.add(event(name="renouvellement", field="renewal", offset_days=-6,
                                    text="{{ first_name }}, votre contrat expire bientôt"))
    h.scheduler._submit = h.submit
    assert sorted(await h.at(paris(2026, 11, 24, 10, 0))) == [before, renewal]
    assert {m.to: m.text for m in h.messages()} == {
        "+33611111111": "Joyeux anniversaire Léa !",
        "+33633333333": "Zoé, votre contrat expire bientôt"}


async def test_29_february_birthdays_fall_on_28_february_in_other_years(h: Harness) -> None:
    add_contact(h, "+33611111111", "Léa", "2000-02-29")
    add_contact(h, "+33622222222", "Marc", "1999-02-28")
    add_contact(h, "+33633333333", "Zoé", "1999-03-01")
    h.clock.now = paris(2027, 2, 1)
    sid = h.scheduler.add(event(text="Bon anniversaire !"))
    h.scheduler._submit = h.submit
    assert await h.at(paris(2027, 2, 28, 10, 0)) == [sid]
    assert sorted(m.to for m in h.messages()) == ["+33611111111", "+33622222222"]
    assert store.month_days(datetime(2028, 2, 28).date()) == [(2, 28)]


def test_a_schedule_that_cannot_run_is_refused_with_the_option_named(h: Harness) -> None:
    with pytest.raises(ScheduleProblem, match="--weekday"):
        h.scheduler.add(periodic(every="weekly"))
    with pytest.raises(ScheduleProblem, match="--day"):
        h.scheduler.add(periodic(every="monthly", day=32))
    with pytest.raises(ScheduleProblem, match="--field"):
        h.scheduler.add(event(field=None))
    assert h.scheduler.list() == []
    assert schedules_module._active is None
