"""When a schedule runs: its cron trigger in the config's time zone, and the runs around
a given instant. Pure: no database, no scheduler."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from store.models import Schedule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY = ("daily", "weekly", "monthly")
KINDS = ("periodic", "event")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
#: Catching up runs more than this many occurrences back is not worth computing.
_MAX_STEPS = 20000


class ScheduleProblem(ValueError):
    """A schedule that cannot run as written; the message names the option."""


def parse_hhmm(value: str) -> tuple[int, int]:
    match = _HHMM.match(value.strip())
    if not match:
        raise ScheduleProblem(f"--at {value!r}: expected HH:MM (24-hour clock)")
    return int(match.group(1)), int(match.group(2))


def parse_date(value: str, option: str = "--until") -> date:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise ScheduleProblem(f"{option} {value!r}: expected a date, YYYY-MM-DD")


def check(schedule: Schedule) -> None:
    """Raise ScheduleProblem when the schedule cannot run as written."""
    if not schedule.name.strip():
        raise ScheduleProblem("--name is needed")
    if not schedule.text.strip():
        raise ScheduleProblem("--text is needed: the SMS text")
    if schedule.kind not in KINDS:
        raise ScheduleProblem(f"kind {schedule.kind!r}: expected periodic or event")
    parse_hhmm(schedule.at)
    if schedule.until:
        parse_date(schedule.until)
    if schedule.repetitions is not None and schedule.repetitions < 1:
        raise ScheduleProblem("--times must be at least 1")
    if schedule.repetitions is not None and schedule.until:
        raise ScheduleProblem("--times and --until: give one or the other")
    if schedule.kind == "event":
        if not (schedule.field or "").strip():
            raise ScheduleProblem("--field is needed: the contact date field (birthday)")
        return
    if schedule.every not in EVERY:
        raise ScheduleProblem(f"--every {schedule.every!r}: expected daily, weekly or monthly")
    if schedule.every == "weekly" and schedule.weekday not in WEEKDAYS:
        raise ScheduleProblem(f"--weekday {schedule.weekday!r}: expected one of "
                              f"{', '.join(WEEKDAYS)}")
    if schedule.every == "monthly" and not (schedule.day and 1 <= schedule.day <= 31):
        raise ScheduleProblem("--day is needed for a monthly send: 1 to 31 (months "
                              "without that day are skipped)")


def trigger_for(schedule: Schedule, timezone: str) -> CronTrigger:
    """The cron trigger of the schedule, wall-clock time in ``timezone`` (DST included)."""
    hour, minute = parse_hhmm(schedule.at)
    fields: dict[str, object] = {"hour": hour, "minute": minute, "second": 0}
    if schedule.kind == "periodic" and schedule.every == "weekly":
        fields["day_of_week"] = schedule.weekday
    elif schedule.kind == "periodic" and schedule.every == "monthly":
        fields["day"] = schedule.day
    end = None
    if schedule.until:
        end = datetime.combine(parse_date(schedule.until), datetime.max.time().replace(
            microsecond=0))
    return CronTrigger(timezone=timezone, end_date=end, **fields)  # type: ignore[arg-type]


def first_at_or_after(schedule: Schedule, timezone: str, when: datetime) -> datetime | None:
    """The first run at or after ``when`` (aware UTC), None when there is none left."""
    fire = trigger_for(schedule, timezone).get_next_fire_time(None, when)
    return fire.astimezone(UTC) if fire is not None else None


def next_after(schedule: Schedule, timezone: str, when: datetime) -> datetime | None:
    """The first run strictly after ``when``."""
    return first_at_or_after(schedule, timezone, when + timedelta(seconds=1))


def latest_due(schedule: Schedule, timezone: str, start: datetime, now: datetime) -> datetime:
    """The last run at or before ``now``, counting from the run due at ``start``: the one
    a catch-up makes when several were missed (they are coalesced into it)."""
    latest = start
    for _ in range(_MAX_STEPS):
        following = next_after(schedule, timezone, latest)
        if following is None or following > now:
            break
        latest = following
    return latest
