"""SLA clocks as a pure function: ``sla(policy, calendar, case_events) -> timers``.

No I/O and no clock: the same policy, calendar and events always give the same
timers, whatever order the events arrive in (they are sorted by time and a
fixed rank first). Breach and warning moments are *computed* from history,
never stored, so a changed policy restates every case it is applied to.

* A **policy** gives, per priority, the business minutes allowed for the first
  response and for the resolution, and the share of the target after which a
  timer is "at risk".
* A **calendar** gives the business hours of a queue in its own time zone
  (``zoneinfo``: a deadline on the Monday after a DST change lands on the new
  offset), public holidays from the ``holidays`` package and custom closure days.
* The clocks run only inside business hours and stop while the case waits on
  the customer (``waiting`` … ``resumed``) or is resolved (``resolved`` …
  ``reopened``). The first response is met by the first ``responded``; the
  resolution by the last ``resolved`` that is not followed by a reopen.

``state_at(timer, as_of)`` gives ok / at_risk / breached / met / paused at any
moment: the "now" is always a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

PRIORITIES = ("urgent", "high", "normal", "low")
#: Clock events, in the order they are applied when two share a moment.
CLOCK_KINDS = ("opened", "priority", "responded", "waiting", "resumed", "resolved",
               "reopened", "closed")
_RANK = {k: i for i, k in enumerate(CLOCK_KINDS)}
#: A calendar with no business hours in this many days is a mistake, not a wait.
_MAX_DAYS = 3700


class SlaConfigError(ValueError):
    """Raised when a policy or calendar is malformed (unknown zone, no hours, bad target)."""


@dataclass(frozen=True)
class Target:
    """Business minutes allowed for one priority."""

    first_response_min: int
    resolution_min: int


@dataclass(frozen=True)
class Policy:
    """Targets per priority and the share of a target after which a timer is at risk."""

    name: str
    targets: Mapping[str, Target]
    warning_share: float = 0.8

    def target(self, priority: str) -> Target:
        try:
            return self.targets[priority]
        except KeyError:
            raise SlaConfigError(f"policy {self.name!r} has no target for {priority!r}") from None


@dataclass(frozen=True)
class Calendar:
    """Business hours of a queue: weekly windows in local time, holidays, closures."""

    name: str
    timezone: str
    #: weekday (0 = Monday) → (start, end) local windows, end after start.
    hours: Mapping[int, tuple[tuple[time, time], ...]]
    country: str | None = None
    subdivision: str | None = None
    closures: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def is_closed(self, day: date) -> bool:
        return day in self.closures or (
            self.country is not None and day in _holidays(self.country, self.subdivision, day.year))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SlaConfigError(f"unknown time zone {name!r}") from exc


@lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    try:
        days = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError as exc:
        raise SlaConfigError(f"no holidays known for {country}/{subdivision}") from exc
    return frozenset(days.keys())


@dataclass(frozen=True)
class ClockEvent:
    """One case event as the clocks see it (``priority`` on opened/priority only)."""

    at: datetime
    kind: str
    priority: str | None = None


@dataclass(frozen=True)
class Timer:
    """One SLA clock of a case.

    ``due_at``/``warn_at`` are None only while the clock is paused short of them.
    ``used_min`` is the business time consumed up to ``met_at``, or up to the last
    pause (a running clock's time keeps growing: see ``used_at``)."""

    name: str
    target_min: int
    due_at: datetime | None
    warn_at: datetime | None
    met_at: datetime | None
    used_min: float
    running: bool
    paused: bool
    breached: bool  # met late, or the target used up in a closed stretch of running time


@dataclass(frozen=True)
class Timers:
    first_response: Timer
    resolution: Timer
    priority: str

    def all(self) -> tuple[Timer, Timer]:
        return (self.first_response, self.resolution)


# -- business time ------------------------------------------------------------
def _windows(cal: Calendar, start: datetime, end: datetime | None) -> Iterable[tuple[datetime,
                                                                                   datetime]]:
    """The business-hour intervals (UTC) overlapping [start, end) in order (end None: open)."""
    zone = cal.zone
    day = start.astimezone(zone).date() - timedelta(days=1)  # a window may start the day before
    last = None if end is None else end.astimezone(zone).date()
    empty_days = 0
    while last is None or day <= last:
        found = False
        if not cal.is_closed(day):
            for opens, closes in cal.hours.get(day.weekday(), ()):
                a = datetime.combine(day, opens, zone).astimezone(UTC)
                b = (datetime.combine(day + timedelta(days=1), time(0), zone) if closes == time(0)
                     else datetime.combine(day, closes, zone)).astimezone(UTC)
                lo, hi = max(a, start), b if end is None else min(b, end)
                if lo < hi:
                    found = True
                    yield lo, hi
        empty_days = 0 if found else empty_days + 1
        if empty_days > _MAX_DAYS:
            raise SlaConfigError(f"calendar {cal.name!r} has no business hours for ten years")
        day += timedelta(days=1)


def business_minutes(cal: Calendar, start: datetime, end: datetime) -> float:
    """Business minutes between two moments (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return 0.0
    return sum((b - a).total_seconds() for a, b in _windows(cal, start, end)) / 60


def add_business_minutes(cal: Calendar, start: datetime, minutes: float,
                         until: datetime | None = None) -> datetime | None:
    """The moment ``minutes`` of business time after ``start`` (None if not before ``until``)."""
    left = timedelta(minutes=minutes)
    if left <= timedelta(0):
        return start.astimezone(UTC)
    for a, b in _windows(cal, start, until):
        if b - a >= left:
            return a + left
        left -= b - a
    return None


# -- the clocks ---------------------------------------------------------------
def ordered(events: Iterable[ClockEvent]) -> list[ClockEvent]:
    """Events in time order, ties broken by a fixed rank: arrival order never matters."""
    return sorted(events, key=lambda e: (e.at.astimezone(UTC), _RANK.get(e.kind, 99),
                                         e.priority or ""))


def sla(policy: Policy, calendar: Calendar, case_events: Iterable[ClockEvent]) -> Timers:
    """The first-response and resolution timers of one case."""
    events = ordered(case_events)
    opened = next((e for e in events if e.kind == "opened"), None)
    if opened is None:
        raise SlaConfigError("a case's clocks need its opened event")
    priority = opened.priority or "normal"
    # (moment, priority before it) of each change: a breach under an earlier target stands
    changes: list[tuple[datetime, str]] = []
    for e in events:
        if e.kind == "priority" and e.priority and e.priority != priority:
            changes.append((e.at.astimezone(UTC), priority))
            priority = e.priority
    target = policy.target(priority)
    # Running segments: [start, stop) while open and not waiting; the last may be open-ended.
    segments: list[tuple[datetime, datetime | None]] = []
    first_response: datetime | None = None
    resolved_at: datetime | None = None
    running_since: datetime | None = None
    waiting = resolved = False
    for e in events:
        at = e.at.astimezone(UTC)
        if at < opened.at.astimezone(UTC):
            continue
        if e.kind == "opened" and running_since is None and not segments:
            running_since = at
        elif e.kind == "responded" and first_response is None:
            first_response = at
        elif e.kind in ("waiting", "resolved", "closed"):
            if running_since is not None:
                segments.append((running_since, at))
                running_since = None
            if e.kind == "waiting":
                waiting = True
            else:
                resolved, resolved_at = True, (resolved_at if resolved else at)
                # Resolved without a word before: the resolution was the first response.
                first_response = at if first_response is None else first_response
        elif e.kind == "resumed" and waiting:
            waiting = False
            if not resolved:
                running_since = at
        elif e.kind == "reopened" and resolved:
            resolved, resolved_at, waiting = False, None, False
            running_since = at
    if running_since is not None:
        segments.append((running_since, None))
    frt = _timer("first_response", target.first_response_min, policy.warning_share, calendar,
                 segments, first_response)
    rt = _timer("resolution", target.resolution_min, policy.warning_share, calendar,
                segments, resolved_at)
    for changed_at, before in changes:
        earlier = policy.target(before)
        frt = _kept_breach(frt, _timer("first_response", earlier.first_response_min,
                                       policy.warning_share, calendar, segments,
                                       first_response), changed_at)
        rt = _kept_breach(rt, _timer("resolution", earlier.resolution_min,
                                     policy.warning_share, calendar, segments, resolved_at),
                          changed_at)
    return Timers(first_response=frt, resolution=rt, priority=priority)


def _kept_breach(timer: Timer, earlier: Timer, changed_at: datetime) -> Timer:
    """A priority change restates the target from the opening, but never undoes a breach
    that had happened under the earlier target by the time of the change: the timer then
    keeps that earlier deadline and stays breached (what an auditor saw breached at any
    moment is breached at every later moment)."""
    due = earlier.due_at
    if due is None or due > changed_at or (earlier.met_at is not None
                                           and earlier.met_at <= due):
        return timer
    if timer.breached and timer.due_at is not None and timer.due_at <= due:
        return timer
    return replace(timer, due_at=due, warn_at=earlier.warn_at, breached=True)


def _cut(segments: Sequence[tuple[datetime, datetime | None]],
         stop: datetime | None) -> list[tuple[datetime, datetime | None]]:
    """The segments up to ``stop`` (all of them when None)."""
    if stop is None:
        return list(segments)
    out = []
    for a, b in segments:
        if a >= stop:
            break
        out.append((a, stop if b is None or b > stop else b))
    return out


def _timer(name: str, target: int, share: float, cal: Calendar,
           segments: Sequence[tuple[datetime, datetime | None]], met: datetime | None) -> Timer:
    """Deadlines over every stretch the clock runs until ``met``; a met timer's deadline is
    where it would have fallen had the clock run on from the moment it was met (what
    happens to the case afterwards never moves it)."""
    if met is not None:
        segments = [*_cut(segments, met), (met, None)]
    due = warn = None
    spent = 0.0
    for a, b in segments:
        if warn is None:
            warn = add_business_minutes(cal, a, target * share - spent, b)
        if due is None:
            due = add_business_minutes(cal, a, target - spent, b)
        if b is None or due is not None:
            break
        spent += business_minutes(cal, a, b)
    used = sum(business_minutes(cal, a, b) for a, b in segments if b is not None)
    running = bool(segments) and segments[-1][1] is None and met is None
    # A truth of history alone: met late, or the target used up while the clock ran
    # (a running clock's future breach is ``due_at``; ``state_at`` compares it to "now").
    breached = used > target if met is not None else used >= target
    return Timer(name=name, target_min=target, due_at=due, warn_at=warn, met_at=met,
                 used_min=round(used, 3), running=running, paused=met is None and not running,
                 breached=breached)


def state_at(timer: Timer, as_of: datetime) -> str:
    """ok / at_risk / breached / met / paused at ``as_of`` (computed, never stored)."""
    if timer.met_at is not None and timer.met_at <= as_of:
        return "breached" if timer.breached else "met"
    if timer.due_at is not None and as_of >= timer.due_at:
        return "breached"
    if timer.warn_at is not None and as_of >= timer.warn_at:
        return "at_risk"
    return "paused" if timer.paused else "ok"


_SEVERITY = {"met": 0, "paused": 0, "ok": 0, "at_risk": 1, "breached": 2}


def case_state(timers: Timers, as_of: datetime) -> str:
    """The worse of the two timers' states as ok / at_risk / breached."""
    worst = max(_SEVERITY[state_at(t, as_of)] for t in timers.all())
    return ("ok", "at_risk", "breached")[worst]


def next_deadline(timers: Timers, as_of: datetime) -> datetime | None:
    """The earliest due moment still ahead of ``as_of`` of a timer not met by then."""
    ahead = [t.due_at for t in timers.all() if t.due_at is not None and t.due_at > as_of
             and (t.met_at is None or t.met_at > as_of)]
    return min(ahead) if ahead else None


# -- configuration (pure: a mapping read from TOML by the caller) -------------
DEFAULT_CONFIG: dict[str, Any] = {
    "policy": {
        "standard": {
            "warning_share": 0.8,
            "targets": {
                "urgent": {"first_response_min": 30, "resolution_min": 240},
                "high": {"first_response_min": 60, "resolution_min": 480},
                "normal": {"first_response_min": 240, "resolution_min": 1440},
                "low": {"first_response_min": 480, "resolution_min": 2880},
            },
        },
    },
    "calendar": {
        "office": {
            "timezone": "Europe/Berlin", "country": "DE", "subdivision": "BE",
            "hours": {"mon-fri": ["08:00-18:00"]}, "closures": [],
        },
        "always": {"timezone": "UTC", "hours": {"mon-sun": ["00:00-24:00"]}},
    },
    "queues": {"default": {"calendar": "office"}, "urgent": {"calendar": "always"}},
    "default_policy": "standard",
}

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SlaConfig:
    """Policies, calendars, the calendar of each queue and the default policy."""

    policies: Mapping[str, Policy]
    calendars: Mapping[str, Calendar]
    queue_calendars: Mapping[str, str]
    default_policy: str

    def policy(self, name: str | None) -> Policy:
        return self.policies.get(name or self.default_policy) or self.policies[self.default_policy]

    def calendar_for(self, queue: str | None) -> Calendar:
        name = self.queue_calendars.get(queue or "default") or self.queue_calendars.get(
            "default") or next(iter(self.calendars))
        return self.calendars[name]


def config_from_mapping(data: Mapping[str, Any]) -> SlaConfig:
    """An ``SlaConfig`` from the TOML shape of ``DEFAULT_CONFIG`` (missing parts: defaults)."""
    merged = {k: data.get(k, v) for k, v in DEFAULT_CONFIG.items()}
    try:
        policies = {name: _policy(name, p) for name, p in merged["policy"].items()}
        calendars = {name: _calendar(name, c) for name, c in merged["calendar"].items()}
        queues = {q: str(v["calendar"]) for q, v in merged["queues"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise SlaConfigError(f"malformed SLA settings: missing or wrong {exc}") from exc
    default = str(merged["default_policy"])
    if default not in policies:
        raise SlaConfigError(f"default_policy {default!r} is not a policy")
    for q, c in queues.items():
        if c not in calendars:
            raise SlaConfigError(f"queue {q!r} names unknown calendar {c!r}")
    return SlaConfig(policies, calendars, queues, default)


def _policy(name: str, p: Mapping[str, Any]) -> Policy:
    targets = {}
    for prio, t in p["targets"].items():
        if prio not in PRIORITIES:
            raise SlaConfigError(f"policy {name!r}: unknown priority {prio!r}")
        fr, rs = int(t["first_response_min"]), int(t["resolution_min"])
        if fr <= 0 or rs <= 0:
            raise SlaConfigError(f"policy {name!r}: targets must be positive minutes")
        targets[prio] = Target(fr, rs)
    share = float(p.get("warning_share", 0.8))
    if not 0 < share < 1:
        raise SlaConfigError(f"policy {name!r}: warning_share must be between 0 and 1")
    return Policy(name, targets, share)


def _calendar(name: str, c: Mapping[str, Any]) -> Calendar:
    hours: dict[int, list[tuple[time, time]]] = {}
    for days, spans in c["hours"].items():
        for day in _day_range(name, days):
            for span in spans:
                hours.setdefault(day, []).append(_span(name, span))
    cal = Calendar(name=name, timezone=str(c["timezone"]),
                   hours={d: tuple(sorted(v)) for d, v in hours.items()},
                   country=c.get("country"), subdivision=c.get("subdivision"),
                   closures=frozenset(date.fromisoformat(str(d)) for d in c.get("closures", ())))
    cal.zone  # noqa: B018 - an unknown zone is refused now, not at the first case
    if cal.country:
        _holidays(cal.country, cal.subdivision, 2026)
    return cal


def _day_range(name: str, text: str) -> list[int]:
    first, _, last = text.lower().partition("-")
    if first not in _DAYS or (last and last not in _DAYS):
        raise SlaConfigError(f"calendar {name!r}: days look like 'mon-fri' or 'sat', not {text!r}")
    a, b = _DAYS.index(first), _DAYS.index(last or first)
    return list(range(a, b + 1))


def _span(name: str, text: str) -> tuple[time, time]:
    try:
        a, b = (part.strip() for part in text.split("-"))
        opens = time.fromisoformat(a)
        closes = time(0) if b == "24:00" else time.fromisoformat(b)
    except ValueError as exc:
        raise SlaConfigError(f"calendar {name!r}: hours look like '08:00-18:00', not {text!r}") \
            from exc
    if closes != time(0) and closes <= opens:
        raise SlaConfigError(f"calendar {name!r}: {text!r} closes before it opens")
    return opens, closes
