"""Channel mix, response times and satisfaction against a week worked out by hand, fed
events directly (SQLite); and ``as_of`` equal to the read models rebuilt from only the
events recorded by then.

The story (UTC; the office calendar is Berlin, 08:00–18:00 Mon–Fri, so 1 h ahead):

=====  ==================  ===========================================  ==============
 who    occurred            what                                         recorded
=====  ==================  ===========================================  ==============
 B      Tue 24 09:00        email in                                     at once
 B      Tue 24 11:00        phone out (answers it: 2 h, 2 business h)    at once
 A      Tue 24 12:00        complaint opened (phone, queue default)      at once
 A      Wed 25 08:00        resolved                                     at once
 B      Wed 25 09:00        phone in, voided on Sun 29                   at once
 B      Wed 25 10:00        request opened (email), assigned billing     at once
 B      Fri 27 09:00        CSAT 2                                       at once
 A      Fri 27 17:00        web form in (18:00 in Berlin: closed)        at once
 A      Sat 28 12:00        stage prospect → current                     at once
 A      Thu 26 10:00        visit out (synced late)                      Sun 29
 A      Mon 30 10:00        phone in, queue urgent (calendar "always")   at once
 A      Mon 30 10:20        email out (answers it: 20 min)               at once
 A      Thu 26 16:00        CSAT 5 (survey answer arriving late)         Tue 1 Dec
 A      Mon 30 08:30        phone out (synced late: answers Fri's form)  Wed 2 Dec
=====  ==================  ===========================================  ==============
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain import service as s
from domain.analytics import Window
from domain.customer import Customer
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections import registry
from projections.channel_mix.view import ChannelMixView, roll_up
from projections.engine import Worker
from projections.events import Item
from projections.response_times.view import ResponseTimesView
from projections.satisfaction.view import SatisfactionView, figures
from projections.store import ReadStore
from tests.support.readside import ListSource, Story, call_fields, email_fields

NAMES = ("channel_mix", "response_times", "satisfaction")
SLA = config_from_mapping(DEFAULT_CONFIG)
WEEK = Window(date(2026, 11, 23), date(2026, 11, 30), "week")


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Log:
    """Events in recording order, each stamped with the moment it was recorded."""

    def __init__(self) -> None:
        self.story = Story()
        self.items: list[Item] = []
        self.history: dict[str, list[Customer.Event]] = {}

    def record(self, customer: Customer, act: Callable[[], None],
               recorded: datetime | None = None) -> Customer.Event:
        act()
        event: Any = None
        for event in customer.collect_events():
            stamp = recorded or event.occurred_at + timedelta(seconds=30)
            object.__setattr__(event, "timestamp", stamp)  # the store's clock, in a test
            self.items.append((len(self.items) + 1, event))
            self.history.setdefault(str(customer.id), []).append(event)
        return event  # type: ignore[no-any-return]

    def touch(self, who: Customer, cls: type[Customer.Event], channel: str, direction: str,
              when: datetime, recorded: datetime | None = None, **fields: Any) -> Customer.Event:
        return self.record(who, lambda: self.story.touch(who, cls, channel, direction, when,
                                                         **fields), recorded)

    def prov(self, when: datetime, channel: str = "system") -> Any:
        return self.story.prov(channel, "internal", when)


def web(n: str) -> dict[str, Any]:
    return {"form_name": "contact", "submission_id": n, "page_url": None, "fields": {}}


def visit() -> dict[str, Any]:
    return {"visit_kind": "field", "staff": "jo", "place": None, "purpose": None,
            "outcome": None, "notes": None, "duration_min": 30}


def case(who: Customer, log: Log, when: datetime, case_id: str, kind: str, channel: str
         ) -> None:
    log.record(who, lambda: s.open_case(
        who, log.prov(when, channel), case_id=case_id, case_kind=kind, category="billing",
        priority="normal", case_channel=channel, queue="default", subject="x", origin=None,
        account_id=None, product_id=None, severity="minor" if kind == "complaint" else None,
        cause_category=None))


def the_week() -> Log:
    log = Log()
    a = log.story.register("A")
    log.record(a, lambda: None)
    b = log.story.register("B")
    log.record(b, lambda: None)
    log.touch(b, Customer.EmailRecorded, "email", "inbound", at(24, 9), **email_fields("<1>", "q"))
    log.touch(b, Customer.CallLogged, "phone", "outbound", at(24, 11), **call_fields("c1"))
    case(a, log, at(24, 12), "case-a", "complaint", "phone")
    log.record(a, lambda: s.resolve_case(a, log.prov(at(25, 8)), "case-a", "fixed"))
    wednesday = log.touch(b, Customer.CallLogged, "phone", "inbound", at(25, 9),
                          **call_fields("c2"))
    case(b, log, at(25, 10), "case-b", "request", "email")
    log.record(b, lambda: s.assign_case(b, log.prov(at(25, 10, 5)), "case-b", "billing", None))
    log.record(b, lambda: s.resolve_case(b, log.prov(at(25, 15)), "case-b", "fixed"))
    log.record(b, lambda: s.record_satisfaction(b, log.prov(at(27, 9)), "case-b", 2, None))
    log.touch(a, Customer.WebFormSubmitted, "web", "inbound", at(27, 17), **web("f1"))
    log.record(a, lambda: a.change_lifecycle_stage(log.prov(at(28, 12)), "current", None))
    log.record(b, lambda: b.void_touchpoint(log.prov(at(29, 8)), wednesday, "test call",
                                            log.history[str(b.id)]))
    log.touch(a, Customer.VisitRecorded, "visit", "outbound", at(26, 10), at(29, 9), **visit())
    log.touch(a, Customer.CallLogged, "phone", "inbound", at(30, 10),
              **{**call_fields("c3"), "queue": "urgent"})
    log.touch(a, Customer.EmailRecorded, "email", "outbound", at(30, 10, 20),
              **email_fields("<2>", "re"))
    log.record(a, lambda: s.record_satisfaction(a, log.prov(at(26, 16)), "case-a", 5, None),
               at(1, 9, month=12))
    log.touch(a, Customer.CallLogged, "phone", "outbound", at(30, 8, 30), at(2, 9, month=12),
              **call_fields("c4"))
    stamps = [e.recorded_at for _, e in log.items]
    assert stamps == sorted(stamps)  # recorded in log order, as a store records
    return log


def built(path: Path, items: list[Item]) -> ReadStore:
    store = ReadStore(f"sqlite:///{path}")
    db = store.connect()
    try:
        Worker(db, ListSource(items), [(registry.get(n), None) for n in NAMES],  # type: ignore[arg-type]
               batch=4).catch_up()
    finally:
        db.close()
    return store


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Log, ReadStore]:
    log = the_week()
    return log, built(tmp_path_factory.mktemp("week") / "read.db", log.items)


def test_response_times_pair_each_inbound_with_the_first_answer_on_any_channel(
        week: tuple[Log, ReadStore]) -> None:
    view = ResponseTimesView(week[1], SLA)
    rows = {(r["period"], r["channel"]): r for r in view.times(WEEK)["rows"]}
    # Tue email: 2 h (2 business h). Fri 17:00 form: answered Mon 08:30 = 63.5 h, of which
    # business time is Mon 08:00–09:30 Berlin only (Friday had closed at 18:00 Berlin).
    assert rows[("2026-W48", "(all)")] == {
        "period": "2026-W48", "channel": "(all)", "inbound": 2, "answered": 2,
        "unanswered": 0, "median_s": 7200.0, "p90_s": 228600.0,
        "median_business_s": 5400.0, "p90_business_s": 7200.0}
    assert (rows[("2026-W48", "web")]["median_s"],
            rows[("2026-W48", "web")]["median_business_s"]) == (228600.0, 5400.0)
    # the urgent queue's calendar runs around the clock: 20 min either way
    assert rows[("2026-W49", "phone")]["median_business_s"] == 1200.0
    assert set(rows) == {("2026-W48", "(all)"), ("2026-W48", "email"), ("2026-W48", "web"),
                         ("2026-W49", "(all)"), ("2026-W49", "phone")}


def test_response_times_as_known_then_take_the_answer_known_then(
        week: tuple[Log, ReadStore]) -> None:
    view = ResponseTimesView(week[1], SLA)
    monday = Window(WEEK.start, WEEK.until, "week", date(2026, 11, 30))
    web_row = next(r for r in view.times(monday)["rows"] if r["channel"] == "web")
    # Mon 08:30 call not synced yet: the 10:20 email answers Friday's form
    assert (web_row["median_s"], web_row["median_business_s"]) == (235200.0, 12000.0)
    saturday = Window(WEEK.start, WEEK.until, "week", date(2026, 11, 28))
    (phone,) = [r for r in view.times(saturday)["rows"] if r["channel"] == "phone"]
    assert (phone["inbound"], phone["unanswered"]) == (1, 1)  # voided only on Sunday
    pairs = view.events(WEEK, "web")
    assert [p["detail"]["response_channel"] for p in pairs] == ["phone"]


def test_channel_mix_counts_by_stage_at_the_time_and_rolls_days_up(
        week: tuple[Log, ReadStore]) -> None:
    doc = ChannelMixView(week[1]).mix(WEEK, "stage")
    assert (doc["total"], doc["by_channel"]) == (7, {"email": 2, "phone": 3, "visit": 1,
                                                      "web": 1})
    cells = {(r["period"], r["channel"], r["direction"], r["group"]): (r["touchpoints"],
                                                                      r["share"])
             for r in doc["rows"]}
    assert cells == {
        ("2026-W48", "email", "inbound", "prospect"): (1, 0.25),
        ("2026-W48", "phone", "outbound", "prospect"): (1, 0.25),
        ("2026-W48", "web", "inbound", "prospect"): (1, 0.25),
        ("2026-W48", "visit", "outbound", "prospect"): (1, 0.25),  # late, stage of its time
        ("2026-W49", "phone", "inbound", "current"): (1, 0.3333),
        ("2026-W49", "phone", "outbound", "current"): (1, 0.3333),
        ("2026-W49", "email", "outbound", "current"): (1, 0.3333)}
    queues = ChannelMixView(week[1]).mix(WEEK, "queue", channel="phone", direction="inbound")
    assert [(r["group"], r["touchpoints"]) for r in queues["rows"]] == [("urgent", 1)]


def test_roll_up_sums_days_into_weeks_and_months() -> None:
    days = [("2026-11-29", "email", "inbound", None, 2), ("2026-11-30", "email", "inbound",
                                                          None, 3),
            ("2026-12-01", "phone", "outbound", None, 5)]
    assert [(r["period"], r["channel"], r["touchpoints"], r["share"])
            for r in roll_up(days, "week")] == [("2026-W48", "email", 2, 1.0),
                                                ("2026-W49", "phone", 5, 0.625),
                                                ("2026-W49", "email", 3, 0.375)]
    assert [(r["period"], r["touchpoints"]) for r in roll_up(days, "month")] == [
        ("2026-11", 5), ("2026-12", 5)]


def test_satisfaction_csat_and_complaint_rate(week: tuple[Log, ReadStore]) -> None:
    view = SatisfactionView(week[1])
    w48, w49 = view.satisfaction(WEEK)["rows"]
    assert w48 == {"period": "2026-W48", "cases_opened": 2, "complaints": 1,
                   "complaint_rate": 0.5, "csat_answers": 2, "csat_average": 3.5,
                   "csat_satisfied": 0.5, "scores": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}}
    assert (w49["cases_opened"], w49["complaint_rate"], w49["csat_average"]) == (0, None, None)
    then = view.satisfaction(Window(WEEK.start, WEEK.until, "week", date(2026, 11, 30)))
    assert (then["rows"][0]["csat_answers"], then["rows"][0]["csat_average"]) == (1, 2.0)
    billing = view.satisfaction(WEEK, queue="billing")["rows"][0]  # assigned there
    assert (billing["cases_opened"], billing["csat_answers"]) == (0, 1)
    assert [e["role"] for e in view.events(WEEK, kind="complaint")] == ["case_opened"]
    assert figures([], "day", ["2026-11-30"])[0]["csat_satisfied"] is None


@pytest.mark.parametrize("day", [date(2026, 11, 26), date(2026, 11, 28), date(2026, 11, 30),
                                 date(2026, 12, 1)])
def test_as_of_equals_the_models_rebuilt_from_the_events_recorded_by_then(
        week: tuple[Log, ReadStore], tmp_path: Path, day: date) -> None:
    log, store = week
    cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    then = built(tmp_path / "then.db", [(p, e) for p, e in log.items
                                        if e.recorded_at < cutoff])
    for by in ("day", "week"):
        asked, now = Window(WEEK.start, day, by, day), Window(WEEK.start, day, by)
        pairs = [(ChannelMixView(store).mix(asked, "stage"),
                  ChannelMixView(then).mix(now, "stage")),
                 (ResponseTimesView(store, SLA).times(asked),
                  ResponseTimesView(then, SLA).times(now)),
                 (SatisfactionView(store).satisfaction(asked),
                  SatisfactionView(then).satisfaction(now))]
        for full, rebuilt in pairs:
            assert full.pop("as_of") == day.isoformat() and rebuilt.pop("as_of") is None
            assert full == rebuilt
