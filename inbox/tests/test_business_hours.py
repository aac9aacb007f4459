from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from inbox.services.assignment.config import load_assignment_config
from inbox.services.business_hours import parse_hours
from inbox.settings import INBOX_DIR

IST = ZoneInfo("Asia/Kolkata")
TEAM_LEADS_FILE = load_assignment_config(INBOX_DIR / "config" / "assignment.yml")  # the hours' one source
HOURS = TEAM_LEADS_FILE.business_hours_calendar()  # Mon–Sat 09:00–21:00 Asia/Kolkata


def ist(*args) -> datetime:
    return datetime(*args, tzinfo=IST)


def test_open_during_the_day_and_closed_at_night_and_on_sunday():
    assert HOURS.is_open(ist(2026, 11, 25, 11, 0))  # Wednesday
    assert not HOURS.is_open(ist(2026, 11, 25, 21, 0))  # closing time is exclusive
    assert not HOURS.is_open(ist(2026, 11, 26, 8, 59))
    assert not HOURS.is_open(ist(2026, 11, 29, 12, 0))  # Sunday


def test_next_opening_skips_sunday_and_is_tomorrow_when_open_now():
    assert HOURS.next_opening(ist(2026, 11, 28, 22, 0)) == ist(2026, 11, 30, 9, 0)  # Saturday night -> Monday
    assert HOURS.next_opening(ist(2026, 11, 25, 7, 0)) == ist(2026, 11, 25, 9, 0)
    assert HOURS.next_opening(ist(2026, 11, 25, 11, 0)) == ist(2026, 11, 26, 9, 0)


def test_sla_deadline_counts_business_time_only():
    assert HOURS.add_business_minutes(ist(2026, 11, 25, 11, 0), 5) == ist(2026, 11, 25, 11, 5)
    assert HOURS.add_business_minutes(ist(2026, 11, 25, 20, 58), 5) == ist(2026, 11, 26, 9, 3)
    assert HOURS.add_business_minutes(ist(2026, 11, 28, 23, 0), 5) == ist(2026, 11, 30, 9, 5)


def test_business_seconds_between_ignores_the_night():
    assert HOURS.business_seconds_between(ist(2026, 11, 25, 20, 58), ist(2026, 11, 26, 9, 3)) == 5 * 60
    assert HOURS.business_seconds_between(ist(2026, 11, 25, 11, 0), ist(2026, 11, 25, 11, 0, 42)) == 42


@pytest.mark.parametrize(
    "deadline, now, expected",
    [
        (ist(2026, 11, 26, 9, 0), ist(2026, 11, 25, 22, 0), "by 9:00 AM tomorrow"),
        (ist(2026, 11, 25, 9, 0), ist(2026, 11, 25, 2, 0), "by 9:00 AM today"),
        (ist(2026, 11, 30, 9, 0), ist(2026, 11, 28, 22, 0), "by 9:00 AM on Monday"),
        (ist(2026, 12, 14, 13, 30), ist(2026, 12, 1, 10, 0), "by 1:30 PM on 14 Dec"),
    ],
)
def test_deadlines_are_said_the_way_a_customer_reads_them(deadline, now, expected):
    assert HOURS.describe_deadline(deadline.astimezone(UTC), now) == expected


def test_holidays_are_closed():
    config = TEAM_LEADS_FILE.model_copy(update={"holidays": [date(2026, 11, 26)]})
    hours = config.business_hours_calendar()
    assert hours.next_opening(ist(2026, 11, 25, 22, 0)) == ist(2026, 11, 27, 9, 0)


@pytest.mark.parametrize("spec", ["9-21", "21:00-09:00", "09:00 to 21:00"])
def test_bad_hours_are_refused_with_a_clear_message(spec):
    with pytest.raises(ValueError, match="09:00-21:00|before closing"):
        parse_hours(spec)


def test_a_team_open_around_the_clock_is_never_closed():
    config = TEAM_LEADS_FILE.model_copy(update={
        "business_hours": {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    })
    hours = config.business_hours_calendar()
    assert hours.is_open(ist(2026, 11, 29, 23, 59, 59))
    assert hours.add_business_minutes(ist(2026, 11, 29, 23, 58), 5) == ist(2026, 11, 30, 0, 3)
