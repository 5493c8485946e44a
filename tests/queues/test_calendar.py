"""Business-time arithmetic: weekends, holidays, time zones, DST changes, odd starts, fractions and large counts."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queues.calendar import (
    WEEKDAYS,
    CalendarError,
    WorkCalendar,
    add_business_hours,
    business_hours_between,
    describe_working_hours,
)

LONDON = ZoneInfo("Europe/London")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MON_FRI_9_17 = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}
EVERY_DAY_9_17 = {day: [["09:00", "17:00"]] for day in WEEKDAYS}
ROUND_THE_CLOCK = {day: [["00:00", "24:00"]] for day in WEEKDAYS}


def calendar(zone="Europe/London", hours=MON_FRI_9_17, holidays=()):
    return WorkCalendar.build(time_zone=zone, working_hours=hours, holidays=holidays)


def at(zone, *parts):
    return datetime(*parts, tzinfo=zone)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two moments (subtracting two datetimes of the same ZoneInfo gives wall-clock time)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


# --- weekends ---------------------------------------------------------------------------------------------------


def test_24_business_hours_from_friday_1600_fall_due_wednesday_1600_in_a_mon_fri_9_17_week():
    # Fri 16-17 (1) + Mon (8) + Tue (8) + Wed 09-16 (7) = 24. The "Tuesday 16:00" is 16 business hours.
    due = add_business_hours(at(LONDON, 2026, 1, 9, 16), 24, calendar())
    assert due == at(LONDON, 2026, 1, 14, 16)


def test_16_business_hours_from_friday_1600_fall_due_tuesday_1600_in_a_mon_fri_9_17_week():
    assert add_business_hours(at(LONDON, 2026, 1, 9, 16), 16, calendar()) == at(LONDON, 2026, 1, 13, 16)


def test_24_business_hours_from_friday_1600_fall_due_tuesday_1600_in_a_mon_fri_8_20_week():
    # Fri 16-20 (4) + Mon (12) + Tue 08-16 (8) = 24: the example holds for twelve-hour days.
    week = {day: [["08:00", "20:00"]] for day in WEEKDAYS[:5]}
    assert add_business_hours(at(LONDON, 2026, 1, 9, 16), 24, calendar(hours=week)) == at(LONDON, 2026, 1, 13, 16)


def test_one_hour_from_friday_closing_falls_due_monday_1000():
    assert add_business_hours(at(LONDON, 2026, 1, 9, 17), 1, calendar()) == at(LONDON, 2026, 1, 12, 10)


def test_hours_that_run_out_at_closing_time_fall_due_at_closing_time_not_next_opening():
    assert add_business_hours(at(LONDON, 2026, 1, 9, 16), 1, calendar()) == at(LONDON, 2026, 1, 9, 17)


def test_a_weekend_counts_no_business_hours():
    assert business_hours_between(at(LONDON, 2026, 1, 9, 17), at(LONDON, 2026, 1, 12, 9), calendar()) == 0


# --- starts outside working hours -------------------------------------------------------------------------------


def test_a_start_before_opening_counts_from_opening():
    assert add_business_hours(at(LONDON, 2026, 1, 12, 7, 15), 2, calendar()) == at(LONDON, 2026, 1, 12, 11)


def test_a_start_after_closing_counts_from_next_mornings_opening():
    assert add_business_hours(at(LONDON, 2026, 1, 12, 18), 2, calendar()) == at(LONDON, 2026, 1, 13, 11)


def test_a_start_on_a_saturday_counts_from_monday_opening():
    assert add_business_hours(at(LONDON, 2026, 1, 10, 12), 1, calendar()) == at(LONDON, 2026, 1, 12, 10)


def test_a_start_on_a_holiday_counts_from_the_next_working_day():
    new_year = calendar(holidays=[date(2026, 1, 1)])
    assert add_business_hours(at(LONDON, 2026, 1, 1, 10), 1, new_year) == at(LONDON, 2026, 1, 2, 10)


def test_a_start_in_a_lunch_break_counts_from_the_afternoon_window():
    split = {day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in WEEKDAYS[:5]}
    assert add_business_hours(at(LONDON, 2026, 1, 12, 12, 45), 1, calendar(hours=split)) == at(
        LONDON, 2026, 1, 12, 14, 30
    )


def test_hours_spanning_a_lunch_break_skip_it():
    split = {day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in WEEKDAYS[:5]}
    assert add_business_hours(at(LONDON, 2026, 1, 12, 12), 1, calendar(hours=split)) == at(LONDON, 2026, 1, 12, 14)


# --- holidays ---------------------------------------------------------------------------------------------------


def test_a_holiday_monday_pushes_the_due_date_a_whole_day():
    bank_holiday = calendar(holidays=[date(2026, 1, 12)])
    assert add_business_hours(at(LONDON, 2026, 1, 9, 16), 16, bank_holiday) == at(LONDON, 2026, 1, 14, 16)


def test_easter_good_friday_and_easter_monday_are_both_skipped():
    easter = calendar(holidays=[date(2026, 4, 3), date(2026, 4, 6)])
    assert add_business_hours(at(LONDON, 2026, 4, 2, 16), 9, easter) == at(LONDON, 2026, 4, 7, 17)


def test_a_holiday_on_a_weekend_changes_nothing():
    saturday_holiday = calendar(holidays=[date(2026, 1, 10)])
    assert add_business_hours(at(LONDON, 2026, 1, 9, 16), 16, saturday_holiday) == at(LONDON, 2026, 1, 13, 16)


def test_holidays_count_no_business_hours_between_two_moments():
    christmas = calendar(holidays=[date(2026, 12, 24), date(2026, 12, 25)])
    assert business_hours_between(at(LONDON, 2026, 12, 23, 9), at(LONDON, 2026, 12, 28, 17), christmas) == 16


# --- time zones -------------------------------------------------------------------------------------------------


def test_the_same_instant_falls_due_differently_in_new_york_and_berlin():
    created = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # 16:00 in Berlin, 10:00 in New York
    in_berlin = add_business_hours(created, 2, calendar("Europe/Berlin"))
    in_new_york = add_business_hours(created, 2, calendar("America/New_York"))
    assert in_berlin == at(BERLIN, 2026, 1, 15, 10)
    assert in_new_york == at(NEW_YORK, 2026, 1, 14, 12)
    assert in_berlin.astimezone(UTC) == datetime(2026, 1, 15, 9, tzinfo=UTC)
    assert in_new_york.astimezone(UTC) == datetime(2026, 1, 14, 17, tzinfo=UTC)


def test_a_utc_start_is_read_in_the_calendars_zone():
    # 22:00 UTC on Thursday is 17:00 Thursday in New York: closed, so counting starts Friday 09:00 New York time.
    created = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)
    assert add_business_hours(created, 1, calendar("America/New_York")) == at(NEW_YORK, 2026, 1, 16, 10)


def test_the_due_date_is_given_in_the_calendars_zone():
    due = add_business_hours(datetime(2026, 1, 14, 15, 0, tzinfo=UTC), 2, calendar("America/New_York"))
    assert due.tzinfo == NEW_YORK


def test_a_day_that_is_a_holiday_locally_is_one_whatever_the_date_in_utc():
    # 2026-07-03 23:30 New York is already 07-04 in UTC; the New York holiday is the local 07-03.
    observed = calendar("America/New_York", holidays=[date(2026, 7, 3)])
    created = datetime(2026, 7, 3, 14, 0, tzinfo=UTC)  # 10:00 on the holiday in New York
    assert add_business_hours(created, 1, observed) == at(NEW_YORK, 2026, 7, 6, 10)


# --- DST changes ------------------------------------------------------------------------------------------------


def test_berlin_spring_change_keeps_opening_hours_on_local_time():
    # Clocks go forward on Sunday 2026-03-29: Friday 16:00 CET + 16h is Tuesday 16:00 CEST, 95 real hours later.
    start = at(BERLIN, 2026, 3, 27, 16)
    due = add_business_hours(start, 16, calendar("Europe/Berlin"))
    assert due == at(BERLIN, 2026, 3, 31, 16)
    assert due.utcoffset() == timedelta(hours=2)
    assert elapsed(start, due) == timedelta(hours=95)


def test_berlin_autumn_change_keeps_opening_hours_on_local_time():
    # Clocks go back on Sunday 2026-10-25: Friday 16:00 CEST + 16h is Tuesday 16:00 CET, 97 real hours later.
    start = at(BERLIN, 2026, 10, 23, 16)
    due = add_business_hours(start, 16, calendar("Europe/Berlin"))
    assert due == at(BERLIN, 2026, 10, 27, 16)
    assert due.utcoffset() == timedelta(hours=1)
    assert elapsed(start, due) == timedelta(hours=97)


def test_new_york_spring_change_keeps_opening_hours_on_local_time():
    # Clocks go forward on Sunday 2026-03-08.
    due = add_business_hours(at(NEW_YORK, 2026, 3, 6, 16), 16, calendar("America/New_York"))
    assert due == at(NEW_YORK, 2026, 3, 10, 16)
    assert due.astimezone(UTC) == datetime(2026, 3, 10, 20, tzinfo=UTC)


def test_new_york_autumn_change_keeps_opening_hours_on_local_time():
    # Clocks go back on Sunday 2026-11-01.
    due = add_business_hours(at(NEW_YORK, 2026, 10, 30, 16), 16, calendar("America/New_York"))
    assert due == at(NEW_YORK, 2026, 11, 3, 16)
    assert due.astimezone(UTC) == datetime(2026, 11, 3, 21, tzinfo=UTC)


@pytest.mark.parametrize("change_day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_a_9_to_17_day_is_8_hours_on_the_berlin_dst_change_day(change_day):
    every_day = calendar("Europe/Berlin", EVERY_DAY_9_17)
    day_start = at(BERLIN, change_day.year, change_day.month, change_day.day)
    assert business_hours_between(day_start, day_start + timedelta(days=1), every_day) == 8
    assert add_business_hours(day_start, 8, every_day) == at(
        BERLIN, change_day.year, change_day.month, change_day.day, 17
    )


@pytest.mark.parametrize("change_day", [date(2026, 3, 8), date(2026, 11, 1)])
def test_a_9_to_17_day_is_8_hours_on_the_new_york_dst_change_day(change_day):
    every_day = calendar("America/New_York", EVERY_DAY_9_17)
    day_start = at(NEW_YORK, change_day.year, change_day.month, change_day.day)
    assert business_hours_between(day_start, day_start + timedelta(days=1), every_day) == 8


def test_a_round_the_clock_berlin_calendar_counts_the_real_23_and_25_hour_change_days():
    always = calendar("Europe/Berlin", ROUND_THE_CLOCK)
    spring = business_hours_between(at(BERLIN, 2026, 3, 29), at(BERLIN, 2026, 3, 30), always)
    autumn = business_hours_between(at(BERLIN, 2026, 10, 25), at(BERLIN, 2026, 10, 26), always)
    assert (spring, autumn) == (23, 25)


def test_24_hours_across_the_spring_change_in_a_round_the_clock_calendar_are_24_real_hours():
    always = calendar("Europe/Berlin", ROUND_THE_CLOCK)
    start = at(BERLIN, 2026, 3, 28, 12)
    due = add_business_hours(start, 24, always)
    assert elapsed(start, due) == timedelta(hours=24)
    assert due == at(BERLIN, 2026, 3, 29, 13)


def test_a_night_window_spanning_the_spring_change_loses_the_skipped_hour():
    night = calendar("Europe/Berlin", {"sun": [["00:00", "06:00"]]})
    assert business_hours_between(at(BERLIN, 2026, 3, 29), at(BERLIN, 2026, 3, 29, 12), night) == 5
    assert business_hours_between(at(BERLIN, 2026, 10, 25), at(BERLIN, 2026, 10, 25, 12), night) == 7


def test_hours_between_two_local_times_of_the_spring_change_day_are_real_hours():
    always = calendar("Europe/Berlin", ROUND_THE_CLOCK)
    assert business_hours_between(at(BERLIN, 2026, 3, 29, 0), at(BERLIN, 2026, 3, 29, 12), always) == 11


def test_the_repeated_autumn_hour_is_worked_twice():
    always = calendar("Europe/Berlin", ROUND_THE_CLOCK)
    first, second = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN), datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    assert business_hours_between(first, second, always) == 1


def test_whole_weeks_across_a_dst_change_are_counted_exactly():
    # A week skipped arithmetically must not assume 168 hours when the clocks change inside it.
    always = calendar("Europe/Berlin", ROUND_THE_CLOCK)
    start = at(BERLIN, 2026, 3, 23)
    due = add_business_hours(start, 24 * 14, always)
    assert elapsed(start, due) == timedelta(days=14)
    assert due == at(BERLIN, 2026, 4, 6, 1)


# --- fractions, zero, large counts ------------------------------------------------------------------------------


def test_fractional_hours_carry_over_to_the_next_day():
    assert add_business_hours(at(LONDON, 2026, 1, 12, 16, 30), 0.75, calendar()) == at(LONDON, 2026, 1, 13, 9, 15)


def test_a_tenth_of_an_hour_is_six_minutes_exactly():
    assert add_business_hours(at(LONDON, 2026, 1, 12, 10), 0.1, calendar()) == at(LONDON, 2026, 1, 12, 10, 6)


def test_fractional_hours_between_two_moments():
    assert business_hours_between(at(LONDON, 2026, 1, 12, 16, 30), at(LONDON, 2026, 1, 13, 9, 15), calendar()) == 0.75


def test_zero_hours_inside_working_hours_is_the_start_itself():
    assert add_business_hours(at(LONDON, 2026, 1, 12, 10, 20), 0, calendar()) == at(LONDON, 2026, 1, 12, 10, 20)


def test_zero_hours_outside_working_hours_is_the_next_opening():
    assert add_business_hours(at(LONDON, 2026, 1, 9, 17), 0, calendar()) == at(LONDON, 2026, 1, 12, 9)


def test_ten_thousand_hours_are_250_working_weeks():
    due = add_business_hours(at(LONDON, 2026, 1, 5, 9), 10_000, calendar())
    assert due == at(LONDON, 2030, 10, 18, 17)  # the Friday of the 250th week: 2026-01-05 + 249 weeks + 4 days
    assert date(2026, 1, 5) + timedelta(weeks=249, days=4) == date(2030, 10, 18)


def test_a_million_hours_round_trip_with_holidays_and_dst_changes():
    holidays = [date(year, 12, 25) for year in range(2026, 2600)]
    berlin = calendar("Europe/Berlin", holidays=holidays)
    start = at(BERLIN, 2026, 3, 27, 16, 30)
    due = add_business_hours(start, 1_000_000, berlin)
    assert business_hours_between(start, due, berlin) == 1_000_000
    assert business_hours_between(start, due - timedelta(minutes=1), berlin) < 1_000_000


# --- between: order and the round-the-clock fallback ------------------------------------------------------------


def test_hours_between_are_negative_when_the_end_comes_first():
    assert business_hours_between(at(LONDON, 2026, 1, 13, 11), at(LONDON, 2026, 1, 12, 16), calendar()) == -3


def test_without_a_calendar_hours_are_elapsed_time():
    start = at(BERLIN, 2026, 3, 28, 12)
    assert elapsed(start, add_business_hours(start, 24, None)) == timedelta(hours=24)
    assert business_hours_between(start, at(BERLIN, 2026, 3, 29, 19), None) == 30


# --- input that is refused --------------------------------------------------------------------------------------


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_hours(datetime(2026, 1, 12, 10), 1, calendar())


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf"), "8", True, 1_000_001])
def test_negative_or_non_numeric_hours_are_refused(hours):
    with pytest.raises(ValueError, match="hours"):
        add_business_hours(at(LONDON, 2026, 1, 12, 10), hours, calendar())


def test_a_due_date_past_the_year_9999_is_refused_not_an_overflow():
    one_hour_a_week = calendar(hours={"mon": [["09:00", "10:00"]]})
    with pytest.raises(ValueError, match="past the last date"):
        add_business_hours(at(LONDON, 9990, 1, 1), 1_000, one_hour_a_week)


@pytest.mark.parametrize("hours", [{}, {"mon": []}, {"sat": None}])
def test_a_week_without_working_hours_is_refused(hours):
    with pytest.raises(CalendarError, match="no working hours") as refused:
        calendar(hours=hours)
    assert refused.value.field == "working_hours"


@pytest.mark.parametrize(
    "hours,message",
    [
        ({"monday": [["09:00", "17:00"]]}, "unknown day"),
        ({"mon": [["9am", "17:00"]]}, "HH:MM"),
        ({"mon": [["09:00", "25:00"]]}, "HH:MM"),
        ({"mon": [["24:00", "24:00"]]}, "HH:MM"),
        ({"mon": [["17:00", "09:00"]]}, "closes before it opens"),
        ({"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}, "overlap"),
        ({"mon": [["13:00", "17:00"], ["09:00", "12:00"]]}, "out of order"),
        ({"mon": [["09:00"]]}, "pair"),
        ({"mon": "09:00-17:00"}, "list"),
        ([["09:00", "17:00"]], "object"),
    ],
)
def test_malformed_working_hours_are_refused(hours, message):
    with pytest.raises(CalendarError, match=message):
        calendar(hours=hours)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "CET+1", "../etc/passwd", None])
def test_a_time_zone_that_is_not_iana_is_refused(zone):
    with pytest.raises(CalendarError, match="IANA") as refused:
        calendar(zone=zone)
    assert refused.value.field == "time_zone"


def test_a_window_may_close_at_midnight_and_adjacent_windows_merge():
    late = calendar(hours={"fri": [["18:00", "20:00"], ["20:00", "24:00"]], "sat": [["00:00", "02:00"]]})
    assert late.week[4] == ((18 * 60, 24 * 60),)
    assert add_business_hours(at(LONDON, 2026, 1, 9, 23), 2, late) == at(LONDON, 2026, 1, 10, 1)


def test_the_working_week_reads_as_a_sentence():
    split = {
        "mon": [["09:00", "12:30"], ["13:30", "17:00"]],
        "tue": [["09:00", "12:30"], ["13:30", "17:00"]],
        "sat": [["10:00", "24:00"]],
    }
    assert describe_working_hours(MON_FRI_9_17) == "Mon–Fri 09:00–17:00"
    assert describe_working_hours(split) == "Mon–Tue 09:00–12:30, 13:30–17:00; Sat 10:00–24:00"


# --- properties against a slow, obviously right reference -------------------------------------------------------

STEP = timedelta(minutes=15)
ZONES = ["Europe/London", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]


def working_at(moment: datetime, zone: ZoneInfo, hours: dict, holidays: set[date]) -> bool:
    local = moment.astimezone(zone)
    if local.date() in holidays:
        return False
    clock = f"{local:%H:%M}"
    return any(opens <= clock < closes for opens, closes in hours.get(WEEKDAYS[local.weekday()], []))


windows = st.sampled_from(
    [
        [["09:00", "17:00"]],
        [["08:30", "12:00"], ["13:00", "17:30"]],
        [["06:00", "24:00"]],
        [["10:00", "14:00"], ["15:00", "19:45"]],
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    week=st.dictionaries(st.sampled_from(WEEKDAYS), windows, min_size=1),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    quarters=st.integers(min_value=1, max_value=4 * 300),
    holiday_offsets=st.lists(st.integers(min_value=0, max_value=120), max_size=8),
)
def test_due_dates_match_a_quarter_hour_walk_through_real_time(zone_name, week, start, quarters, holiday_offsets):
    zone = ZoneInfo(zone_name)
    start = start.replace(minute=start.minute // 15 * 15, second=0, microsecond=0, tzinfo=UTC)
    holidays = {start.date() + timedelta(days=n) for n in holiday_offsets}
    cal = calendar(zone_name, week, holidays)
    due = add_business_hours(start, quarters / 4, cal)
    moment, left = start, quarters
    while True:  # the quarter in which the count runs out ends at the due date
        if working_at(moment, zone, week, holidays):
            left -= 1
            if left == 0:
                break
        moment += STEP
    assert due == moment + STEP
    assert business_hours_between(start, due, cal) == quarters / 4


@settings(max_examples=200, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    hours=st.floats(min_value=0, max_value=5_000, allow_nan=False),
)
def test_hours_between_a_start_and_its_due_date_are_the_hours_added(zone_name, start, hours):
    cal = calendar(zone_name, holidays=[date(2026, 12, 25), date(2027, 1, 1), date(2028, 4, 14)])
    due = add_business_hours(start, hours, cal)
    assert due >= start
    assert business_hours_between(start, due, cal) == pytest.approx(hours, abs=1e-6)
