"""Business hours: a weekly schedule in a time zone, with holidays. A pure policy, no I/O.

Written as lines an admin can type (`mon-fri 09:00-17:30`, `sat 10:00-14:00`, `fri 22:00-02:00`)
and holidays as ISO dates (`2026-12-25 Christmas`). Times are wall-clock times in the schedule's
zone, so a daylight-saving change moves the UTC instants, not the opening hours. A range whose end
is not after its start runs overnight into the next day. A holiday closes the ranges that start on
that date; an overnight range that started the evening before still runs into it. An empty
schedule means always open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LINE = re.compile(
    r"^(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+"
    r"(?P<ranges>closed|\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}(?:\s*,\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})*)$"
)
END_OF_DAY = time(23, 59, 59, 999999)
# How far ahead `next_opening` looks (a schedule closed for longer says "no opening known").
LOOKAHEAD_DAYS = 60


class ScheduleError(ValueError):
    """A schedule line an admin wrote cannot be understood; the message says which and why."""


@dataclass(frozen=True)
class TimeRange:
    start: time
    end: time  # not after start: the range runs overnight into the next day

    @property
    def overnight(self) -> bool:
        return self.end <= self.start and self.end != END_OF_DAY


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = "UTC"
    weekly: Mapping[int, tuple[TimeRange, ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        zone(self.timezone)

    @property
    def always_open(self) -> bool:
        return not any(self.weekly.values())

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (an aware datetime) falls inside the schedule."""
        if self.always_open:
            return True
        local = at.astimezone(zone(self.timezone))
        today, now = local.date(), local.time().replace(tzinfo=None)
        yesterday = today - timedelta(days=1)
        for r in self._ranges_on(today):
            if now >= r.start and (r.overnight or now < r.end or r.end == END_OF_DAY):
                return True
        return any(r.overnight and now < r.end for r in self._ranges_on(yesterday))

    def next_opening(self, at: datetime) -> datetime | None:
        """When the schedule next opens after `at` (itself if open now), in the schedule's zone."""
        tz = zone(self.timezone)
        local = at.astimezone(tz)
        if self.is_open(at):
            return local
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            for r in sorted(self._ranges_on(day), key=lambda item: item.start):
                start = datetime.combine(day, r.start, tzinfo=tz)
                if start > local:
                    return start
        return None

    def _ranges_on(self, day: date) -> tuple[TimeRange, ...]:
        if day in self.holidays:
            return ()
        return self.weekly.get(day.weekday(), ())


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        message = f"unknown time zone {name!r} (use a name such as Europe/Madrid)"
        raise ScheduleError(message) from exc


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return END_OF_DAY
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ScheduleError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return time(hours, minutes)


def _days(spec: str) -> list[int]:
    days: list[int] = []
    for part in spec.split(","):
        first, _, last = (p.strip() for p in part.partition("-"))
        if first not in DAYS or (last and last not in DAYS):
            raise ScheduleError(f"{part.strip()!r}: days are written mon, tue, wed ... sun")
        start, end = DAYS.index(first), DAYS.index(last or first)
        days.extend((start + i) % 7 for i in range((end - start) % 7 + 1))
    return days


def _ranges(spec: str) -> tuple[TimeRange, ...]:
    if spec == "closed":
        return ()
    found = []
    for part in spec.split(","):
        start, _, end = (p.strip() for p in part.partition("-"))
        begins, ends = _clock(start), _clock(end)
        if begins == ends:
            raise ScheduleError(f"{part.strip()!r} opens and closes at the same time")
        found.append(TimeRange(begins, ends))
    return tuple(found)


def parse_weekly(lines: Iterable[str]) -> dict[int, tuple[TimeRange, ...]]:
    """`mon-fri 09:00-17:00`, `sat 10:00-13:00, 16:00-19:00`, `sun closed`: later lines add."""
    weekly: dict[int, tuple[TimeRange, ...]] = {}
    for raw in lines:
        line = " ".join(raw.strip().lower().split())
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ScheduleError(f"{raw.strip()!r}: write days then hours, e.g. mon-fri 09:00-17:00")
        ranges = _ranges(match["ranges"])
        for day in _days(match["days"]):
            weekly[day] = (*weekly.get(day, ()), *ranges) if ranges else ()
    return weekly


def parse_holidays(lines: Iterable[str]) -> frozenset[date]:
    """ISO dates, one a line, anything after the date is a label (`2026-12-25 Christmas`)."""
    days: set[date] = set()
    for raw in lines:
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            days.add(date.fromisoformat(text.split()[0]))
        except ValueError as exc:
            raise ScheduleError(f"{text!r}: write holidays as dates like 2026-12-25") from exc
    return frozenset(days)


def business_hours(
    *, timezone: str, weekly: Sequence[str], holidays: Sequence[str]
) -> BusinessHours:
    """The policy from the lines an admin wrote; ScheduleError says what is wrong."""
    return BusinessHours(
        timezone=timezone or "UTC",
        weekly=parse_weekly(weekly),
        holidays=parse_holidays(holidays),
    )
