"""When marketing SMS may go out: time window, allowed weekdays, public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from sms.config import MarketingWindow

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS = 370  # a window with no allowed day at all must not loop forever


@lru_cache(maxsize=16)
def _holidays(country: str) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country.upper())
    except NotImplementedError as exc:
        raise ValueError(f"no public holiday calendar for country {country!r}") from exc


def _day_allowed(day: date, window: MarketingWindow, country: str) -> bool:
    if _WEEKDAYS[day.weekday()] not in window.days:
        return False
    return not (window.skip_public_holidays and day in _holidays(country))


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Wall-clock *at* on *day*, as a UTC instant; a time in a DST gap moves forward."""
    naive = datetime.combine(day, at)
    # fold=0 picks the first of two ambiguous times; a nonexistent time is read with
    # the offset before the gap, which lands after it once converted.
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _interval(day: date, window: MarketingWindow, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = _local(day, window.start, tz)
    # end <= start means the window runs past midnight into the next day
    end_day = day if window.end > window.start else day + timedelta(days=1)
    return start, _local(end_day, window.end, tz)


def next_allowed(
    when: datetime, window: MarketingWindow, *, timezone: str, country: str
) -> datetime:
    """*when* itself if marketing SMS may go then, else the start of the next allowed window.

    *when* must be timezone-aware. The window's start is inclusive and its end exclusive
    (19:59 is allowed, 20:00 is not). A day's window belongs to the day it starts on:
    that day must be in ``window.days`` and, with ``skip_public_holidays``, not a public
    holiday of *country*. The result is in *timezone*.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("next_allowed needs a timezone-aware datetime")
    tz = ZoneInfo(timezone)
    instant = when.astimezone(UTC)
    # start the day before: yesterday's window may run past midnight
    first = instant.astimezone(tz).date() - timedelta(days=1)
    for offset in range(_MAX_DAYS + 1):
        day = first + timedelta(days=offset)
        if not _day_allowed(day, window, country):
            continue
        start, end = _interval(day, window, tz)
        if end > instant:
            return max(start, instant).astimezone(tz)
    raise ValueError(
        f"no allowed marketing window within {_MAX_DAYS} days of {when.isoformat()}; "
        "check compliance.marketing_window.days"
    )


def is_allowed(when: datetime, window: MarketingWindow, *, timezone: str, country: str) -> bool:
    """Whether marketing SMS may go out at *when* (timezone-aware)."""
    allowed = next_allowed(when, window, timezone=timezone, country=country)
    # compare instants: datetimes sharing a tzinfo compare by wall clock, wrong around DST
    return allowed.astimezone(UTC) == when.astimezone(UTC)
