"""Business hours in the team's time zone: open/closed, next opening, business-time arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LOOKAHEAD_DAYS = 400  # holidays can close many days in a row; a year is the sanity bound


class BusinessHours:
    def __init__(
        self,
        tz: ZoneInfo,
        weekly: dict[int, tuple[time, time] | None],
        holidays: set[date] | frozenset[date] = frozenset(),
    ):
        self.tz = tz
        self.weekly = weekly
        self.holidays = frozenset(holidays)
        if not any(weekly.values()):
            raise ValueError("business hours must open on at least one day of the week")

    def _periods_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        for offset in range(_LOOKAHEAD_DAYS):
            current = day + timedelta(days=offset)
            hours = self.weekly.get(current.weekday())
            if hours is None or current in self.holidays:
                continue
            opens, closes = hours
            # "24:00" (stored as time.max) closes at the next midnight.
            if closes == time.max:
                closing = datetime.combine(current + timedelta(days=1), time(0), self.tz)
            else:
                closing = datetime.combine(current, closes, self.tz)
            yield datetime.combine(current, opens, self.tz).astimezone(UTC), closing.astimezone(UTC)

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def is_open(self, at: datetime) -> bool:
        for opens, closes in self._periods_from(self._local_day(at)):
            return opens <= at < closes
        return False

    def next_opening(self, after: datetime) -> datetime:
        """The first opening time strictly after `after` (tomorrow's if the team is open now)."""
        for opens, _ in self._periods_from(self._local_day(after)):
            if opens > after:
                return opens
        raise ValueError("no opening time within a year")

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """When `minutes` of business time have passed after `start`."""
        remaining = timedelta(minutes=minutes)
        for opens, closes in self._periods_from(self._local_day(start)):
            if closes <= start:
                continue
            begin = max(opens, start)
            if begin + remaining <= closes:
                return begin + remaining
            remaining -= closes - begin
        raise ValueError("deadline beyond a year of business hours")

    def business_seconds_between(self, start: datetime, end: datetime) -> int:
        if end <= start:
            return 0
        total = timedelta()
        for opens, closes in self._periods_from(self._local_day(start)):
            if opens >= end:
                break
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta():
                total += overlap
        return int(total.total_seconds())

    def describe_deadline(self, at: datetime, now: datetime) -> str:
        """'by 9:00 AM today / tomorrow / on Monday / on 12 Dec' in the team's time zone."""
        local_at, local_now = at.astimezone(self.tz), now.astimezone(self.tz)
        clock = f"{local_at.hour % 12 or 12}:{local_at.minute:02d} {'AM' if local_at.hour < 12 else 'PM'}"
        days_ahead = (local_at.date() - local_now.date()).days
        if days_ahead <= 0:
            return f"by {clock} today"
        if days_ahead == 1:
            return f"by {clock} tomorrow"
        if days_ahead < 7:
            return f"by {clock} on {local_at:%A}"
        return f"by {clock} on {local_at.day} {local_at:%b}"


def parse_hours(spec: str | None) -> tuple[time, time] | None:
    """'09:00-21:00' -> (09:00, 21:00); '00:00-24:00' is the whole day; 'closed' / empty -> None."""
    if spec is None or str(spec).strip().lower() in {"", "closed"}:
        return None
    try:
        opens_text, closes_text = (part.strip() for part in str(spec).split("-"))
        opens = time.fromisoformat(opens_text)
        closes = time.max if closes_text == "24:00" else time.fromisoformat(closes_text)
    except ValueError as error:
        raise ValueError(f"business hours must look like '09:00-21:00' or 'closed', got {spec!r}") from error
    if not opens < closes:
        raise ValueError(f"opening time must be before closing time in {spec!r}")
    return opens, closes
