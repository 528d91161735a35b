"""SLA clocks: a hand-computed table across a weekend, a holiday, a custom closure and
the DST change of 29 March 2026 (Berlin: CET +01:00 before, CEST +02:00 after), and
properties: deterministic, invariant to arrival order, monotone in time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sla import (
    ClockEvent,
    SlaConfigError,
    add_business_minutes,
    business_minutes,
    case_state,
    config_from_mapping,
    sla,
    state_at,
)

CONFIG = config_from_mapping({
    "calendar": {
        # Berlin office hours, Berlin holidays (Good Friday 3 April, Easter Monday 6 April
        # 2026) and a custom closure on Wednesday 25 March 2026.
        "office": {"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BE",
                   "hours": {"mon-fri": ["08:00-18:00"]}, "closures": ["2026-03-25"]},
        "berlin247": {"timezone": "Europe/Berlin", "hours": {"mon-sun": ["00:00-24:00"]}},
    },
    "queues": {"default": {"calendar": "office"}, "night": {"calendar": "berlin247"}},
})
POLICY = CONFIG.policy(None)  # standard: urgent 30/240, high 60/480, normal 240/1440, low 480/2880


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ev(at: str, kind: str, priority: str | None = None) -> ClockEvent:
    return ClockEvent(z(at), kind, priority)


def opened(at: str, priority: str) -> ClockEvent:
    return ev(at, "opened", priority)


# (case, calendar, events, as_of, first-response due, resolution due, FR state, RT state)
# Every due moment below was worked out by hand in local time and written in UTC.
TABLE = [
    # 1 Thu 10:00 CET, normal: FR 14:00 Thu; RT 8h Thu + 10h Fri + 6h Mon (CEST) -> 14:00 Mon
    ("1", "office", [opened("2026-03-26T09:00", "normal")], "2026-03-26T12:30",
     "2026-03-26T13:00", "2026-03-30T12:00", "at_risk", "ok"),
    # 2 Fri 17:45 urgent: 15 min Fri, 15 min Mon 08:15 CEST; RT 15 + 225 min -> Mon 11:45 CEST
    ("2", "office", [opened("2026-03-27T16:45", "urgent")], "2026-03-30T06:20",
     "2026-03-30T06:15", "2026-03-30T09:45", "breached", "ok"),
    # 3 24/7 Berlin over the DST night: 4h elapsed is 02:00Z (04:00 CEST, 5 wall-clock hours)
    ("3", "berlin247", [opened("2026-03-28T22:00", "urgent")], "2026-03-29T01:00",
     "2026-03-28T22:30", "2026-03-29T02:00", "breached", "ok"),
    # 4 Fri 16:00 CET normal: FR 2h Fri + 2h Mon -> 10:00 CEST = 08:00Z (not 09:00Z)
    ("4", "office", [opened("2026-03-27T15:00", "normal")], "2026-03-30T07:30",
     "2026-03-30T08:00", "2026-04-01T08:00", "at_risk", "ok"),
    # 5 Thu 2 Apr 12:00 CEST: FR 16:00; RT 6h Thu, Good Friday, weekend, Easter Monday,
    #   10h Tue, 8h Wed -> Wed 8 Apr 16:00 CEST
    ("5", "office", [opened("2026-04-02T10:00", "normal")], "2026-04-07T10:00",
     "2026-04-02T14:00", "2026-04-08T14:00", "breached", "ok"),
    # 6 low, opened on the custom closure Wed 25 Mar: FR 8h Thu -> 16:00 CET;
    #   RT 48h: Thu, Fri, Mon, Tue, 8h Wed 1 Apr -> 16:00 CEST
    ("6", "office", [opened("2026-03-25T08:00", "low")], "2026-03-26T08:00",
     "2026-03-26T15:00", "2026-04-01T14:00", "ok", "ok"),
    # 7 high, answered after 30 min, resolved after 6h: both met
    ("7", "office", [opened("2026-03-24T08:00", "high"), ev("2026-03-24T08:30", "responded"),
                     ev("2026-03-24T14:00", "resolved")], "2026-03-24T15:00",
     "2026-03-24T09:00", "2026-03-24T16:00", "met", "met"),
    # 8 high, answered after 90 min (late), resolved Thu 09:00 (9h Tue + closure + 1h): late
    ("8", "office", [opened("2026-03-24T08:00", "high"), ev("2026-03-24T09:30", "responded"),
                     ev("2026-03-26T08:00", "resolved")], "2026-03-26T09:00",
     "2026-03-24T09:00", "2026-03-24T16:00", "breached", "breached"),
    # 9 normal, waits Mon 10:00 to Tue 10:00: RT 2h Mon + 8h Tue + closure + 10h Thu + 4h Fri;
    #   FR was met at 09:00 Mon: its deadline stays Mon 12:00 CET, the later pause is not its
    ("9", "office", [opened("2026-03-23T07:00", "normal"), ev("2026-03-23T08:00", "responded"),
                     ev("2026-03-23T09:00", "waiting"), ev("2026-03-24T09:00", "resumed"),
                     ev("2026-03-24T15:00", "resolved")], "2026-03-25T12:00",
     "2026-03-23T11:00", "2026-03-27T11:00", "met", "met"),
    # 10 waiting since Thu 09:00, never resumed: the resolution clock is paused, no deadline;
    #    FR met at 08:30 CET with 210 min to spare -> would have been due 12:00 CET
    ("10", "office", [opened("2026-03-26T07:00", "normal"), ev("2026-03-26T07:30", "responded"),
                      ev("2026-03-26T08:00", "waiting")], "2026-03-30T12:00",
     "2026-03-26T11:00", None, "met", "paused"),
    # 11 Mon 30 Mar 08:00 CEST normal: FR warn 11:12, due 12:00; RT 10h Mon+Tue, 4h Wed
    ("11", "office", [opened("2026-03-30T06:00", "normal")], "2026-03-30T09:30",
     "2026-03-30T10:00", "2026-04-01T10:00", "at_risk", "ok"),
    # 12 Mon 09:00 CEST normal, not answered by 14:00 CEST
    ("12", "office", [opened("2026-03-30T07:00", "normal")], "2026-03-30T12:00",
     "2026-03-30T11:00", "2026-04-01T11:00", "breached", "ok"),
    # 13 high resolved after 2h, reopened Wed 09:00, resolved 14:00: 420 of 480 used, so the
    #    deadline would have been 15:00 CEST Wed
    ("13", "office", [opened("2026-03-31T06:00", "high"), ev("2026-03-31T06:20", "responded"),
                      ev("2026-03-31T08:00", "resolved"), ev("2026-04-01T07:00", "reopened"),
                      ev("2026-04-01T12:00", "resolved")], "2026-04-01T13:00",
     "2026-03-31T07:00", "2026-04-01T13:00", "met", "met"),
    # 14 resolved within the hour (the resolution is the first response, 180 min to spare:
    #    12:00 CEST), reopened after Easter: 23h left from Tue 7 Apr 08:00 -> Thu 9 Apr 11:00
    ("14", "office", [opened("2026-04-02T06:00", "normal"), ev("2026-04-02T07:00", "resolved"),
                      ev("2026-04-07T06:00", "reopened")], "2026-04-07T12:00",
     "2026-04-02T10:00", "2026-04-09T09:00", "met", "ok"),
    # 15 urgent Thu 2 Apr 17:00 CEST: FR 17:30; RT 1h Thu + 3h Tue 7 Apr -> 11:00 CEST
    ("15", "office", [opened("2026-04-02T15:00", "urgent")], "2026-04-07T08:30",
     "2026-04-02T15:30", "2026-04-07T09:00", "breached", "at_risk"),
    # 16 Saturday 10:00 CET: clocks start Mon 08:00 CEST
    ("16", "office", [opened("2026-03-28T09:00", "normal")], "2026-03-29T12:00",
     "2026-03-30T10:00", "2026-04-01T10:00", "ok", "ok"),
    # 17 24/7 on the DST Sunday 01:30 CET: 4h and 24h of real time
    ("17", "berlin247", [opened("2026-03-29T00:30", "normal")], "2026-03-29T04:00",
     "2026-03-29T04:30", "2026-03-30T00:30", "at_risk", "ok"),
    # 18 raised to urgent ten minutes in: the whole case runs on urgent targets
    ("18", "office", [opened("2026-03-23T07:00", "normal"), ev("2026-03-23T07:10", "priority",
                                                               "urgent")], "2026-03-23T12:00",
     "2026-03-23T07:30", "2026-03-23T11:00", "breached", "breached"),
    # 19 low opened on Good Friday: nothing runs until Tue 7 Apr 08:00 CEST
    ("19", "office", [opened("2026-04-03T08:00", "low")], "2026-04-06T12:00",
     "2026-04-07T14:00", "2026-04-13T14:00", "ok", "ok"),
    # 20 high waits over the DST weekend: 60 min Fri, resumes Mon 09:00 CEST, 7h left
    #   (the first-response target ran out exactly at the pause, long after it was met)
    ("20", "office", [opened("2026-03-27T14:00", "high"), ev("2026-03-27T14:10", "responded"),
                      ev("2026-03-27T15:00", "waiting"), ev("2026-03-30T07:00", "resumed")],
     "2026-03-30T13:00", "2026-03-27T15:00", "2026-03-30T14:00", "met", "at_risk"),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_hand_computed_timers(row: tuple) -> None:  # type: ignore[type-arg]
    _, cal, events, as_of, fr_due, rt_due, fr_state, rt_state = row
    timers = sla(POLICY, CONFIG.calendars[cal], events)
    assert timers.first_response.due_at == (z(fr_due) if fr_due else None)
    assert timers.resolution.due_at == (z(rt_due) if rt_due else None)
    assert state_at(timers.first_response, z(as_of)) == fr_state
    assert state_at(timers.resolution, z(as_of)) == rt_state


def test_warning_moments_and_time_used() -> None:
    office = CONFIG.calendars["office"]
    t = sla(POLICY, office, [opened("2026-03-26T09:00", "normal")])
    assert t.first_response.warn_at == z("2026-03-26T12:12")  # 192 of 240 minutes
    assert t.resolution.warn_at == z("2026-03-30T07:12")  # 1152 of 1440: 72 min into Mon
    nine = TABLE[8][2]
    t9 = sla(POLICY, office, nine)
    assert t9.resolution.used_min == 480 and t9.first_response.used_min == 60
    assert business_minutes(office, z("2026-03-27T16:00"), z("2026-03-30T07:00")) == 60 + 60


def test_refuses_a_case_without_its_opening_and_bad_settings() -> None:
    with pytest.raises(SlaConfigError):
        sla(POLICY, CONFIG.calendars["office"], [ev("2026-03-26T09:00", "responded")])
    with pytest.raises(SlaConfigError, match="time zone"):
        config_from_mapping({"calendar": {"x": {"timezone": "Mars/Olympus",
                                                "hours": {"mon": ["08:00-17:00"]}}}})
    with pytest.raises(SlaConfigError, match="closes before"):
        config_from_mapping({"calendar": {"x": {"timezone": "UTC",
                                                "hours": {"mon": ["17:00-08:00"]}}}})
    with pytest.raises(SlaConfigError, match="unknown calendar"):
        config_from_mapping({"queues": {"default": {"calendar": "nowhere"}}})


# -- properties ---------------------------------------------------------------
START = datetime(2026, 3, 20, tzinfo=UTC)
KINDS = ("responded", "waiting", "resumed", "resolved", "reopened", "priority")


@st.composite
def histories(draw: st.DrawFn) -> list[ClockEvent]:
    first = START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 10)))
    prio = draw(st.sampled_from(("urgent", "high", "normal", "low")))
    out = [ClockEvent(first, "opened", prio)]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(KINDS))
        at = first + timedelta(minutes=draw(st.integers(0, 60 * 24 * 14)))
        out.append(ClockEvent(at, kind, draw(st.sampled_from(("urgent", "low")))
                              if kind == "priority" else None))
    return out


CALENDARS = st.sampled_from(("office", "berlin247"))


@settings(max_examples=60, deadline=None)
@given(histories(), CALENDARS, st.randoms(use_true_random=False))
def test_deterministic_and_invariant_to_arrival_order(
        events: list[ClockEvent], cal: str, rnd: random.Random) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)
    calendar = CONFIG.calendars[cal]
    assert sla(POLICY, calendar, events) == sla(POLICY, calendar, shuffled)
    assert sla(POLICY, calendar, events) == sla(POLICY, calendar, list(events))


@settings(max_examples=60, deadline=None)
@given(histories(), CALENDARS, st.integers(0, 60 * 24 * 20), st.integers(0, 60 * 24 * 5))
def test_monotone_in_time(events: list[ClockEvent], cal: str, a: int, b: int) -> None:
    """Seen at a later moment (with what happened by then) a breach stays a breach and the
    business time used never shrinks."""
    calendar = CONFIG.calendars[cal]
    t1 = START + timedelta(minutes=a)
    t2 = t1 + timedelta(minutes=b)
    known1 = [e for e in events if e.at <= t1]
    known2 = [e for e in events if e.at <= t2]
    if not any(e.kind == "opened" for e in known1):
        return
    s1, s2 = sla(POLICY, calendar, known1), sla(POLICY, calendar, known2)
    for x, y in zip(s1.all(), s2.all(), strict=True):
        if state_at(x, t1) == "breached":
            assert state_at(y, t2) == "breached"
        assert y.used_min >= x.used_min - 1e-6
    if case_state(s1, t1) == "breached":
        assert case_state(s2, t2) == "breached"


@settings(max_examples=60, deadline=None)
@given(CALENDARS, st.integers(0, 60 * 24 * 20), st.integers(0, 60 * 24 * 10),
       st.integers(0, 60 * 24 * 10))
def test_business_time_is_additive_and_inverse_of_adding(cal: str, a: int, b: int,
                                                         c: int) -> None:
    calendar = CONFIG.calendars[cal]
    t0 = START + timedelta(minutes=a)
    t1, t2 = t0 + timedelta(minutes=b), t0 + timedelta(minutes=b + c)
    whole = business_minutes(calendar, t0, t2)
    assert whole == pytest.approx(business_minutes(calendar, t0, t1)
                                  + business_minutes(calendar, t1, t2))
    end = add_business_minutes(calendar, t0, whole)
    assert end is not None and business_minutes(calendar, t0, end) == pytest.approx(whole)


def test_a_priority_lowered_after_a_breach_leaves_it_breached() -> None:
    """Found by ``test_monotone_in_time``: an urgent case's resolution (240 business min in
    office hours) is overdue at 11:00 UTC; lowering it to ``low`` at 11:01 restates the
    target, but what was breached at 11:00 stays breached, with its deadline."""
    cal = CONFIG.calendars["office"]
    events = [opened("2026-03-20T00:00", "urgent"), ev("2026-03-20T00:00", "responded"),
              ev("2026-03-20T11:01", "priority", "low")]
    before = sla(POLICY, cal, events[:2]).resolution
    assert state_at(before, z("2026-03-20T11:00")) == "breached"
    after = sla(POLICY, cal, events)
    assert after.priority == "low"
    assert after.resolution.due_at == before.due_at and after.resolution.breached
    assert state_at(after.resolution, z("2026-03-20T11:01")) == "breached"
    # lowered before the deadline: the new, longer target applies from the opening
    early = sla(POLICY, cal, [*events[:2], ev("2026-03-20T10:00", "priority", "low")])
    assert state_at(early.resolution, z("2026-03-20T11:01")) == "ok"
