"""Business time: SLA hours counted only inside a calendar's working hours, in its time zone, skipping holidays.

Pure arithmetic, no database. Working windows are local wall-clock times ("09:00"-"17:00" in Europe/Berlin); each
window is turned into real instants with zoneinfo on its own date, so the window is in the right place on both
sides of a DST change. Business time is the real time elapsed inside those windows, so a 09:00-17:00 day is 8 hours
on the DST-change day too, and only a window that spans the change itself (a night shift, a 24x7 calendar) is an
hour shorter or longer that day: the hour that never happens cannot be worked, the repeated one can.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAYS_PER_WEEK = 7
MINUTES_PER_HOUR = 60
MINUTES_PER_DAY = 24 * MINUTES_PER_HOUR
MICROSECONDS_PER_MINUTE = 60_000_000
MICROSECONDS_PER_HOUR = MINUTES_PER_HOUR * MICROSECONDS_PER_MINUTE
END_OF_DAY = "24:00"
# Far beyond any SLA (about 480 years of 40-hour weeks); bounds the work one call can ask for.
MAX_HOURS = 1_000_000
_CLOCK_TIME = re.compile(r"^(?P<hour>[01]\d|2[0-3]):(?P<minute>[0-5]\d)$")

# A window as minutes after local midnight: (open, close), open < close <= MINUTES_PER_DAY.
Window = tuple[int, int]


class CalendarError(ValueError):
    """A calendar definition that cannot be used. `field` names the part at fault (time_zone, working_hours)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@functools.cache
def iana_time_zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def parse_time_zone(name: str) -> ZoneInfo:
    """The IANA zone called `name` ("Europe/London"), or CalendarError."""
    if not isinstance(name, str) or name not in iana_time_zones():
        raise CalendarError(f"{name!r} is not an IANA time zone such as Europe/London", field="time_zone")
    return ZoneInfo(name)


def _minutes(text, *, day: str, allow_end_of_day: bool) -> int:
    if allow_end_of_day and text == END_OF_DAY:
        return MINUTES_PER_DAY
    match = _CLOCK_TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise CalendarError(f'{day}: {text!r} is not a time of day as "HH:MM"', field="working_hours")
    return int(match["hour"]) * MINUTES_PER_HOUR + int(match["minute"])


def parse_working_hours(config: Mapping) -> tuple[tuple[Window, ...], ...]:
    """Working windows for Monday..Sunday from {"mon": [["09:00", "17:00"]], ...}; days left out are days off.

    Windows of a day must be in order and must not overlap; a window may close at "24:00". A week with no working
    time at all is refused: no due date could ever be reached.
    """
    if not isinstance(config, Mapping):
        raise CalendarError(
            'working hours must be an object such as {"mon": [["09:00", "17:00"]]}', field="working_hours"
        )
    unknown = sorted(str(key) for key in config if key not in WEEKDAYS)
    if unknown:
        raise CalendarError(f"unknown day {', '.join(unknown)}: use {', '.join(WEEKDAYS)}", field="working_hours")
    week = []
    for day in WEEKDAYS:
        windows = config.get(day) or []
        if not isinstance(windows, list):
            raise CalendarError(f'{day}: expected a list of ["HH:MM", "HH:MM"] pairs', field="working_hours")
        parsed: list[Window] = []
        for window in windows:
            if not isinstance(window, (list, tuple)) or len(window) != 2:
                raise CalendarError(f'{day}: {window!r} is not an ["HH:MM", "HH:MM"] pair', field="working_hours")
            opens = _minutes(window[0], day=day, allow_end_of_day=False)
            closes = _minutes(window[1], day=day, allow_end_of_day=True)
            if closes <= opens:
                raise CalendarError(
                    f"{day}: {window[0]}-{window[1]} closes before it opens (split a night shift at 24:00)",
                    field="working_hours",
                )
            if parsed and opens < parsed[-1][1]:
                raise CalendarError(f"{day}: windows overlap or are out of order", field="working_hours")
            if parsed and opens == parsed[-1][1]:
                parsed[-1] = (parsed[-1][0], closes)
            else:
                parsed.append((opens, closes))
        week.append(tuple(parsed))
    if not any(week):
        raise CalendarError("the week has no working hours", field="working_hours")
    return tuple(week)


def _clock(minutes: int) -> str:
    return (
        END_OF_DAY
        if minutes == MINUTES_PER_DAY
        else f"{minutes // MINUTES_PER_HOUR:02d}:{minutes % MINUTES_PER_HOUR:02d}"
    )


def describe_working_hours(config: Mapping) -> str:
    """A one-line summary for people: "Mon–Fri 09:00–17:00"; consecutive days with the same hours are grouped."""
    try:
        week = parse_working_hours(config)
    except CalendarError as exc:
        return f"invalid: {exc}"
    parts = []
    day = 0
    while day < DAYS_PER_WEEK:
        last = day
        while last + 1 < DAYS_PER_WEEK and week[last + 1] == week[day]:
            last += 1
        if week[day]:
            days = WEEKDAY_LABELS[day] if last == day else f"{WEEKDAY_LABELS[day]}–{WEEKDAY_LABELS[last]}"
            hours = ", ".join(f"{_clock(opens)}–{_clock(closes)}" for opens, closes in week[day])
            parts.append(f"{days} {hours}")
        day = last + 1
    return "; ".join(parts)


@dataclass(frozen=True)
class WorkCalendar:
    """Working windows per weekday (Monday first) in a time zone, less holidays (whole local dates)."""

    time_zone: ZoneInfo
    week: tuple[tuple[Window, ...], ...]
    holidays: tuple[date, ...] = ()
    _holiday_set: frozenset[date] = field(init=False, repr=False, compare=False)
    _day_microseconds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _week_microseconds: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.week) != DAYS_PER_WEEK:
            raise CalendarError("a week has seven days", field="working_hours")
        holidays = tuple(sorted(set(self.holidays)))
        day_microseconds = tuple(
            sum(closes - opens for opens, closes in windows) * MICROSECONDS_PER_MINUTE for windows in self.week
        )
        if not any(day_microseconds):
            raise CalendarError("the week has no working hours", field="working_hours")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "_holiday_set", frozenset(holidays))
        object.__setattr__(self, "_day_microseconds", day_microseconds)
        object.__setattr__(self, "_week_microseconds", sum(day_microseconds))

    @classmethod
    def build(cls, *, time_zone: str, working_hours: Mapping, holidays: Iterable[date] = ()) -> WorkCalendar:
        """Validate and build from the stored form (IANA zone name, {"mon": [["09:00", "17:00"]], ...})."""
        return cls(
            time_zone=parse_time_zone(time_zone), week=parse_working_hours(working_hours), holidays=tuple(holidays)
        )

    # --- instants of one local date ----------------------------------------------------------------------------

    def _instant(self, day: date, minutes: int) -> datetime:
        """The real instant (UTC) of local wall-clock `minutes` after midnight on `day`.

        A time that the DST change skips is read with the offset before the change (fold=0): 02:30 on the spring
        change is 03:30 new time. A repeated time is its first occurrence.
        """
        if minutes == MINUTES_PER_DAY:
            day, minutes = day + timedelta(days=1), 0
        local = datetime.combine(
            day, time(minutes // MINUTES_PER_HOUR, minutes % MINUTES_PER_HOUR), tzinfo=self.time_zone
        )
        return local.astimezone(UTC)

    def _windows(self, day: date) -> Iterable[tuple[datetime, datetime]]:
        if day in self._holiday_set:
            return
        for opens, closes in self.week[day.weekday()]:
            yield self._instant(day, opens), self._instant(day, closes)

    def _overlap_microseconds(self, day: date, lower: datetime | None = None, upper: datetime | None = None) -> int:
        """Working time of local `day` that falls within [lower, upper] (open-ended when None)."""
        total = 0
        for opens, closes in self._windows(day):
            start = opens if lower is None else max(opens, lower)
            end = closes if upper is None else min(closes, upper)
            if end > start:
                total += _microseconds(end - start)
        return total

    # --- whole days and weeks -------------------------------------------------------------------------------------

    def _offset_at_midnight(self, day: date):
        return datetime.combine(day, time(0), tzinfo=self.time_zone).utcoffset()

    def _holiday_microseconds(self, first: date, stop: date) -> int:
        """Nominal working time lost to holidays on dates in [first, stop)."""
        lo = bisect.bisect_left(self.holidays, first)
        hi = bisect.bisect_left(self.holidays, stop)
        return sum(self._day_microseconds[h.weekday()] for h in self.holidays[lo:hi])

    def _week_from(self, first: date) -> int:
        """Working time of the seven local days from `first`, computed without walking them when no DST change
        falls inside (same UTC offset at both ends; real zones never change twice within a week)."""
        stop = first + timedelta(days=DAYS_PER_WEEK)
        if self._offset_at_midnight(first) == self._offset_at_midnight(stop):
            return self._week_microseconds - self._holiday_microseconds(first, stop)
        return sum(self._overlap_microseconds(first + timedelta(days=n)) for n in range(DAYS_PER_WEEK))

    def _days_microseconds(self, first: date, days: int) -> int:
        """Working time of `days` whole local days from `first`: week by week, then the odd days."""
        total = 0
        while days >= DAYS_PER_WEEK:
            total += self._week_from(first)
            first += timedelta(days=DAYS_PER_WEEK)
            days -= DAYS_PER_WEEK
        for n in range(days):
            total += self._overlap_microseconds(first + timedelta(days=n))
        return total

    # --- the two operations ---------------------------------------------------------------------------------------

    def add(self, start: datetime, microseconds: int) -> datetime:
        # Instants are kept in UTC: datetimes of one ZoneInfo add, subtract and compare by wall clock.
        cursor = start.astimezone(UTC)
        day = cursor.astimezone(self.time_zone).date()
        # The start's own day from the start on, then whole weeks while they do not use the rest up, then days.
        remaining = microseconds
        while True:
            for opens, closes in self._windows(day):
                begin = max(opens, cursor)
                if begin >= closes:
                    continue
                available = _microseconds(closes - begin)
                if remaining <= available:
                    return (begin + timedelta(microseconds=remaining)).astimezone(self.time_zone)
                remaining -= available
            day += timedelta(days=1)
            cursor = self._instant(day, 0)
            while (week := self._week_from(day)) < remaining:
                remaining -= week
                day += timedelta(days=DAYS_PER_WEEK)
                cursor = self._instant(day, 0)

    def between(self, start: datetime, end: datetime) -> int:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        first = start.astimezone(self.time_zone).date()
        last = end.astimezone(self.time_zone).date()
        if first == last:
            return self._overlap_microseconds(first, start, end)
        return (
            self._overlap_microseconds(first, lower=start)
            + self._days_microseconds(first + timedelta(days=1), (last - first).days - 1)
            + self._overlap_microseconds(last, upper=end)
        )


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def add_business_hours(start: datetime, hours: float, calendar: WorkCalendar | None) -> datetime:
    """The moment `hours` of working time after `start`.

    Counting starts at the next opening when `start` is outside working hours, so zero hours gives the first working
    moment at or after `start`; hours that run out exactly at a closing time fall due at that closing time. Without
    a calendar the hours are plain elapsed time (round the clock). The result is in the calendar's time zone.
    """
    _require_aware(start, "start")
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours) or hours < 0:
        raise ValueError(f"hours must be a finite number of hours, 0 or more, not {hours!r}")
    if hours > MAX_HOURS:
        raise ValueError(f"hours must be at most {MAX_HOURS:,}, not {hours!r}")
    microseconds = round(hours * MICROSECONDS_PER_HOUR)
    try:
        if calendar is None:
            return start.astimezone(UTC) + timedelta(microseconds=microseconds)
        return calendar.add(start, microseconds)
    except OverflowError:
        raise ValueError(f"{hours} hours after {start.isoformat()} is past the last date Python knows") from None


def business_hours_between(start: datetime, end: datetime, calendar: WorkCalendar | None) -> float:
    """Working hours from `start` to `end`; negative when `end` comes first. Round the clock without a calendar."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    # In UTC: two datetimes of the same ZoneInfo compare and subtract by wall clock, wrong across a DST change.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end < start:
        return -business_hours_between(end, start, calendar)
    if calendar is None:
        return _microseconds(end - start) / MICROSECONDS_PER_HOUR
    return calendar.between(start, end) / MICROSECONDS_PER_HOUR
