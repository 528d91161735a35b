"""The analytics figures' pure rules: periods, percentiles, rates, business time.

Shared by every analytics read model (channel mix, response times, satisfaction,
cohorts, customer value): no I/O and no clock, so a figure computed twice from the
same rows is the same figure, and an ``as_of`` day is always a parameter.

Periods are UTC: a day is ``2026-11-30``, a week its ISO week ``2026-W49`` (weeks
start on Monday, as ``projections.service`` labels them), a month ``2026-11``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from domain.sla import Calendar, business_minutes

GRANULARITIES = ("day", "week", "month")


class InvalidPeriodError(ValueError):
    """Raised when a granularity is not one of ``GRANULARITIES`` or a window is empty."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _day_us(day: date) -> int:
    return (datetime.combine(day, time(), tzinfo=UTC) - _EPOCH) // _US


@dataclass(frozen=True)
class Window:
    """What an analytics figure is asked for: the UTC days ``start`` … ``until``
    (both included) in ``by`` periods, as known at the end of ``as_of`` (None: as known
    now). A read model answers ``as_of`` by keeping each row's ``recorded_at`` and
    counting only rows recorded before ``known_before_us``."""

    start: date
    until: date
    by: str = "day"
    as_of: date | None = None

    def __post_init__(self) -> None:
        period_of(self.start, self.by)  # validates ``by``
        if self.until < self.start:
            raise InvalidPeriodError(f"until ({self.until}) is before from ({self.start})")

    @property
    def start_us(self) -> int:
        return _day_us(self.start)

    @property
    def end_us(self) -> int:
        """The first microsecond after ``until``."""
        return _day_us(self.until + timedelta(days=1))

    @property
    def known_before_us(self) -> int | None:
        """Rows recorded at or after this moment were not known on ``as_of``."""
        return None if self.as_of is None else _day_us(self.as_of + timedelta(days=1))

    def labels(self) -> list[str]:
        return periods(self.start, self.until, self.by)


def period_of(day: date, by: str) -> str:
    """The label of the ``by`` period holding ``day``."""
    if by == "day":
        return day.isoformat()
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if by == "month":
        return f"{day.year}-{day.month:02d}"
    raise InvalidPeriodError(f"granularity must be one of {', '.join(GRANULARITIES)}: {by!r}")


def period_start(day: date, by: str) -> date:
    """The first day of the ``by`` period holding ``day``."""
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    period_of(day, by)  # validates ``by``
    return day


def periods(start: date, until: date, by: str) -> list[str]:
    """Every period label from the one holding ``start`` to the one holding ``until``."""
    out: list[str] = []
    for day in _days(start, until):
        label = period_of(day, by)
        if not out or out[-1] != label:
            out.append(label)
    return out


def _days(start: date, until: date) -> Iterator[date]:
    day = start
    while day <= until:
        yield day
        day += timedelta(days=1)


def day_of(micros: int) -> date:
    """The UTC day of a moment in microseconds since 1970."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).date()


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least ``share`` of the values at
    or below it); None for no values. ``share`` 0.5 is the median as staff read it: a value
    that occurred, never an average of two."""
    if not values:
        return None
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1]: {share}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 decimals; None when ``whole`` is 0 (no rate, not a zero one)."""
    return round(part / whole, 4) if whole else None


def business_seconds(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Seconds of ``calendar``'s business hours between two moments (0 when end ≤ start):
    the SLA calendar's own arithmetic (time zone, weekly hours, holidays, closures)."""
    if end <= start:
        return 0.0
    return round(business_minutes(calendar, start, end) * 60, 3)
