"""Business hours: time zones, holidays, overnight ranges, daylight saving."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from rapport.domain.inboxes.business_hours import ScheduleError, business_hours

MADRID = ZoneInfo("Europe/Madrid")


def hours(*weekly: str, holidays: tuple[str, ...] = (), tz: str = "Europe/Madrid"):
    return business_hours(timezone=tz, weekly=list(weekly), holidays=list(holidays))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)


def test_weekday_schedule_in_the_schedules_own_time_zone():
    office = hours("mon-fri 09:00-17:30")
    # Monday 2026-11-23, 09:00 in Madrid is 08:00 UTC.
    assert office.is_open(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert not office.is_open(datetime(2026, 11, 23, 7, 59, tzinfo=UTC))
    assert office.is_open(local(2026, 11, 23, 17, 29))
    assert not office.is_open(local(2026, 11, 23, 17, 30))
    assert not office.is_open(local(2026, 11, 28, 12, 0))  # Saturday


def test_same_instant_differs_by_time_zone():
    instant = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 16:00 Madrid, 10:00 New York
    assert hours("mon-fri 15:30-18:00").is_open(instant)
    assert not hours("mon-fri 15:30-18:00", tz="America/New_York").is_open(instant)


def test_overnight_range_runs_into_the_next_day():
    night = hours("fri 22:00-02:00")
    assert night.is_open(local(2026, 11, 27, 23, 0))  # Friday night
    assert night.is_open(local(2026, 11, 28, 1, 59))  # Saturday small hours
    assert not night.is_open(local(2026, 11, 28, 2, 0))
    assert not night.is_open(local(2026, 11, 27, 1, 0))  # Friday small hours: Thursday is shut


def test_holiday_closes_ranges_that_start_that_day_but_not_the_night_before():
    schedule = hours("mon-sun 20:00-02:00", holidays=("2026-12-25 Christmas",))
    assert not schedule.is_open(local(2026, 12, 25, 21, 0))
    assert schedule.is_open(local(2026, 12, 25, 1, 0))  # Christmas Eve's shift still running
    assert not schedule.is_open(local(2026, 12, 26, 1, 0))  # nothing started on the 25th


def test_split_days_and_later_lines_override():
    schedule = hours("mon-sat 09:00-13:00, 16:00-19:00", "sat closed", "fri-mon 10:00-11:00")
    assert schedule.is_open(local(2026, 11, 24, 17, 0))  # Tuesday afternoon
    assert not schedule.is_open(local(2026, 11, 24, 14, 0))  # lunch
    assert not schedule.is_open(local(2026, 11, 28, 12, 0))  # Saturday closed
    assert schedule.is_open(local(2026, 11, 29, 10, 30))  # Sunday from the wrapped fri-mon line


def test_all_day_and_empty_schedule():
    assert hours().always_open and hours().is_open(local(2026, 11, 29, 3, 0))
    assert hours("mon-sun 00:00-24:00").is_open(local(2026, 11, 29, 23, 59, 59))


def test_daylight_saving_keeps_wall_clock_hours():
    office = hours("mon-fri 09:00-17:00")
    # Summer: 09:00 Madrid is 07:00 UTC; winter: 08:00 UTC.
    assert office.is_open(datetime(2026, 7, 6, 7, 0, tzinfo=UTC))
    assert not office.is_open(datetime(2026, 12, 7, 7, 30, tzinfo=UTC))


def test_next_opening():
    office = hours("mon-fri 09:00-17:00", holidays=("2026-11-30",))
    friday_evening = local(2026, 11, 27, 18, 0)
    # Monday the 30th is a holiday: Tuesday at nine.
    assert office.next_opening(friday_evening) == local(2026, 12, 1, 9, 0)
    assert office.next_opening(local(2026, 11, 27, 10, 0)) == local(2026, 11, 27, 10, 0)


@pytest.mark.parametrize(
    "line",
    ["monday 09:00-17:00", "mon 9-17", "mon 25:00-26:00", "mon 09:00-09:00", "xyz-fri 09:00-10:00"],
)
def test_bad_lines_say_what_is_wrong(line):
    with pytest.raises(ScheduleError):
        hours(line)


def test_bad_zone_and_holiday():
    with pytest.raises(ScheduleError, match="time zone"):
        hours("mon 09:00-10:00", tz="Mars/Olympus")
    with pytest.raises(ScheduleError, match="2026-12-25"):
        hours(holidays=("25/12/2026",))
