from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from sms.config import MarketingWindow
from sms.window import is_allowed, next_allowed

PARIS = ZoneInfo("Europe/Paris")
DEFAULT = MarketingWindow()
EVERY_DAY = MarketingWindow(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


def nxt(when: datetime, window: MarketingWindow = DEFAULT, country: str = "FR") -> datetime:
    return next_allowed(when, window, timezone="Europe/Paris", country=country)


def allowed(when: datetime, window: MarketingWindow = DEFAULT) -> bool:
    return is_allowed(when, window, timezone="Europe/Paris", country="FR")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # an ordinary Wednesday inside the window: unchanged
        (paris(2026, 11, 18, 10, 30), paris(2026, 11, 18, 10, 30)),
        (paris(2026, 11, 18, 8, 0), paris(2026, 11, 18, 8, 0)),
        (paris(2026, 11, 18, 19, 59), paris(2026, 11, 18, 19, 59)),
        (paris(2026, 11, 18, 19, 59, 59), paris(2026, 11, 18, 19, 59, 59)),
        # early morning: same day at 08:00
        (paris(2026, 11, 18, 7, 59), paris(2026, 11, 18, 8, 0)),
        (paris(2026, 11, 18, 0, 0), paris(2026, 11, 18, 8, 0)),
        # 20:00 is already too late: next day 08:00
        (paris(2026, 11, 18, 20, 0), paris(2026, 11, 19, 8, 0)),
        (paris(2026, 11, 18, 23, 45), paris(2026, 11, 19, 8, 0)),
        # Sunday -> Monday 08:00
        (paris(2026, 3, 1, 11, 0), paris(2026, 3, 2, 8, 0)),
        # Saturday evening -> Monday 08:00
        (paris(2026, 11, 21, 20, 30), paris(2026, 11, 23, 8, 0)),
        # Saturday daytime is allowed
        (paris(2026, 11, 21, 15, 0), paris(2026, 11, 21, 15, 0)),
        # Christmas (Friday) -> Saturday 26th 08:00
        (paris(2026, 12, 25, 10, 0), paris(2026, 12, 26, 8, 0)),
        (paris(2026, 12, 24, 20, 0), paris(2026, 12, 26, 8, 0)),
        # Saturday 26 December evening -> Monday 28th
        (paris(2026, 12, 26, 20, 0), paris(2026, 12, 28, 8, 0)),
        # 14 July (Tuesday) -> Wednesday 15th
        (paris(2026, 7, 14, 9, 0), paris(2026, 7, 15, 8, 0)),
        (paris(2026, 7, 13, 19, 59), paris(2026, 7, 13, 19, 59)),
        (paris(2026, 7, 13, 20, 0), paris(2026, 7, 15, 8, 0)),
        # New Year's Eve evening, 1 January holiday (Friday) -> Saturday 2 January 2027
        (paris(2026, 12, 31, 21, 0), paris(2027, 1, 2, 8, 0)),
        # 1 May (Friday) and Easter Monday
        (paris(2026, 5, 1, 12, 0), paris(2026, 5, 2, 8, 0)),
        (paris(2026, 4, 5, 12, 0), paris(2026, 4, 7, 8, 0)),
        # Armistice, 11 November (Wednesday)
        (paris(2026, 11, 11, 12, 0), paris(2026, 11, 12, 8, 0)),
    ],
)
def test_french_calendar(when: datetime, expected: datetime) -> None:
    result = nxt(when)
    assert result == expected
    assert result.utcoffset() == expected.utcoffset()
    assert result.tzinfo is not None and str(result.tzinfo) == "Europe/Paris"
    assert allowed(when) == (result == when)


def test_result_keeps_the_instant_and_is_in_config_timezone() -> None:
    # 17:59 UTC in July is 19:59 in Paris
    when = datetime(2026, 7, 15, 17, 59, tzinfo=UTC)
    result = nxt(when)
    assert result == when
    assert result.isoformat() == "2026-07-15T19:59:00+02:00"
    later = nxt(datetime(2026, 7, 15, 18, 0, tzinfo=UTC))
    assert later.isoformat() == "2026-07-16T08:00:00+02:00"


def test_other_input_timezone() -> None:
    # 09:00 in New York on a Wednesday is 15:00 in Paris
    when = datetime(2026, 11, 18, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert nxt(when) == when
    # 15:00 in New York is 21:00 in Paris
    late = datetime(2026, 11, 18, 15, 0, tzinfo=ZoneInfo("America/New_York"))
    assert nxt(late).isoformat() == "2026-11-19T08:00:00+01:00"


def test_spring_forward_weekend() -> None:
    # Saturday 28 March 2026 evening, winter time; clocks jump on Sunday 29 March
    result = nxt(paris(2026, 3, 28, 20, 30))
    assert result.isoformat() == "2026-03-30T08:00:00+02:00"
    assert nxt(paris(2026, 3, 28, 19, 0)).isoformat() == "2026-03-28T19:00:00+01:00"


def test_fall_back_weekend() -> None:
    result = nxt(paris(2026, 10, 24, 22, 0))
    assert result.isoformat() == "2026-10-26T08:00:00+01:00"


def test_dst_days_when_sundays_are_allowed() -> None:
    assert nxt(paris(2026, 3, 29, 1, 0), EVERY_DAY).isoformat() == "2026-03-29T08:00:00+02:00"
    assert nxt(paris(2026, 10, 25, 1, 0), EVERY_DAY).isoformat() == "2026-10-25T08:00:00+01:00"


def test_window_starting_in_the_spring_gap_opens_after_it() -> None:
    window = MarketingWindow(start=time(2, 30), end=time(20, 0), days=EVERY_DAY.days)
    assert nxt(paris(2026, 3, 29, 1, 0), window).isoformat() == "2026-03-29T03:30:00+02:00"


def test_repeated_hour_on_fall_back_day() -> None:
    window = MarketingWindow(start=time(2, 0), end=time(3, 0), days=EVERY_DAY.days)
    first = paris(2026, 10, 25, 2, 30, fold=0)  # +02:00
    second = paris(2026, 10, 25, 2, 30, fold=1)  # +01:00, one hour later
    assert nxt(paris(2026, 10, 25, 1, 0), window).isoformat() == "2026-10-25T02:00:00+02:00"
    assert allowed(first, window)
    assert allowed(second, window)
    after = second.astimezone(UTC) + timedelta(minutes=30)  # 03:00 +01:00
    assert not allowed(after, window)


def test_holidays_can_be_ignored() -> None:
    window = MarketingWindow(skip_public_holidays=False)
    when = paris(2026, 12, 25, 10, 0)
    assert nxt(when, window) == when


def test_other_country_holidays() -> None:
    # Belgian national day, Tuesday 21 July 2026, is an ordinary day in France
    when = datetime(2026, 7, 21, 10, 0, tzinfo=ZoneInfo("Europe/Brussels"))
    assert next_allowed(when, DEFAULT, timezone="Europe/Brussels", country="BE").isoformat() == (
        "2026-07-22T08:00:00+02:00"
    )
    assert nxt(when) == when


def test_custom_days_and_hours() -> None:
    window = MarketingWindow(start=time(9, 30), end=time(12, 0), days=["tue", "thu"])
    # Wednesday 18 November 2026 -> Thursday 09:30
    assert nxt(paris(2026, 11, 18, 10, 0), window) == paris(2026, 11, 19, 9, 30)
    assert nxt(paris(2026, 11, 19, 12, 0), window) == paris(2026, 11, 24, 9, 30)


def test_window_across_midnight_belongs_to_its_start_day() -> None:
    window = MarketingWindow(start=time(22, 0), end=time(2, 0), days=["fri"])
    assert allowed(paris(2026, 11, 21, 1, 0), window)  # Saturday 01:00, Friday's window
    assert nxt(paris(2026, 11, 21, 2, 0), window) == paris(2026, 11, 27, 22, 0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        nxt(datetime(2026, 11, 18, 10, 0))


def test_window_without_days_fails_clearly() -> None:
    with pytest.raises(ValueError, match="no allowed marketing window"):
        nxt(paris(2026, 11, 18, 10, 0), MarketingWindow(days=[]))


def test_unknown_country_fails_clearly() -> None:
    with pytest.raises(ValueError, match="no public holiday calendar"):
        nxt(paris(2026, 11, 18, 10, 0), country="XX")
