"""The work read model and the work policies over the real write model, on SQLite and
PostgreSQL alike: follow-ups created by rule once (a second pass records nothing), new
cases and tasks routed by the settings' rules, my tasks overdue first at a given now, the
day, the team calendar, the supervisor's view, the feed, erasure; a rebuild equals the
live model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from commands import messages as m
from commands import sales as cs
from commands import service as sc
from commands import work as wc
from domain import work as w
from projections import registry
from projections.work.view import WorkView
from read_api.work import day_bounds
from replays.rebuild import rebuild
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.work_policies import WorkPolicies

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Tuesday, 10:30 in Berlin
WORK_FILE = """
zone = "Europe/Berlin"
[[staff]]
id = "ana"
team = "service"
skills = ["billing"]
shifts = [{days = ["mon", "tue", "wed", "thu", "fri"], start = "08:00", end = "16:00"}]
[[staff]]
id = "ben"
team = "service"
skills = ["billing"]
shifts = [{days = ["mon", "tue", "wed", "thu", "fri"], start = "08:00", end = "16:00"}]
[[rules]]
name = "billing"
queues = ["billing"]
skill = "billing"
strategy = "round-robin"
"""


@pytest.fixture(params=["sqlite", "postgres"])
def deps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dependencies]:
    (tmp_path / "work.toml").write_text(WORK_FILE)
    env = {**request.getfixturevalue(f"{request.param}_env"),
           "TOUCHSTREAM_WORK_FILE": str(tmp_path / "work.toml")}
    found = bootstrap(env)
    yield found
    found.close()


def _at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def _scenario(deps: Dependencies) -> dict[str, Any]:
    hub = deps.hub
    ada, bob = uuid4(), uuid4()
    hub.execute(m.RegisterCustomer(customer_id=ada, name="Ada", occurred_at=_at(-100)))
    hub.execute(m.RegisterCustomer(customer_id=bob, name="Bob", occurred_at=_at(-100)))
    complaint = uuid4()
    hub.execute(sc.OpenCase(customer_id=ada, case_id=complaint, case_kind="complaint",
                            category="billing", queue="complaints", subject="Overcharged",
                            occurred_at=_at(-50)))
    hub.execute(sc.AssignCase(customer_id=ada, case_id=complaint, queue="complaints",
                              agent="ana", occurred_at=_at(-49)))
    hub.execute(sc.ResolveCase(customer_id=ada, case_id=complaint, resolution_code="refund",
                               occurred_at=_at(-48)))
    opp = uuid4()
    hub.execute(cs.OpenOpportunity(customer_id=bob, opportunity_id=opp, title="Boiler",
                                   amount="1200.00", currency="EUR",
                                   expected_close=date(2026, 12, 1), owner="sam",
                                   occurred_at=_at(-40)))
    hub.execute(cs.WinOpportunity(customer_id=bob, opportunity_id=opp, order_reference="O-1",
                                  occurred_at=_at(-30)))
    # two new billing cases and an unassigned billing task: routed in turn
    new_cases = [uuid4(), uuid4()]
    for i, case in enumerate(new_cases):
        hub.execute(sc.OpenCase(customer_id=bob, case_id=case, category="billing",
                                queue="billing", subject=f"Invoice {i}", occurred_at=_at(-3 + i)))
    queued = uuid4()
    hub.execute(wc.CreateTask(customer_id=bob, task_id=queued, title="Check the refund",
                              queue="billing", due_at=_at(5), occurred_at=_at(-1)))
    # ana's own tasks: one overdue, one later today (an appointment), one cancelled
    late, later, gone = uuid4(), uuid4(), uuid4()
    hub.execute(wc.CreateTask(customer_id=ada, task_id=late, title="Send the form",
                              task_kind="email", assignee="ana", due_at=_at(-20),
                              occurred_at=_at(-60)))
    hub.execute(wc.CreateTask(customer_id=ada, task_id=later, title="Visit Ada",
                              task_kind="meeting", assignee="ana", due_at=_at(4),
                              ends_at=_at(5), reminder_at=_at(3.5), link_kind="case",
                              link_id=complaint, occurred_at=_at(-60)))
    hub.execute(wc.CreateTask(customer_id=ada, task_id=gone, title="Old idea", assignee="ana",
                              due_at=_at(2), occurred_at=_at(-60)))
    hub.execute(wc.CancelTask(customer_id=ada, task_id=gone, occurred_at=_at(-59)))
    return {"ada": ada, "bob": bob, "complaint": complaint, "opp": opp, "cases": new_cases,
            "queued": queued, "late": late, "later": later}


def test_policies_views_erasure_and_rebuild(deps: Dependencies) -> None:
    ids = _scenario(deps)
    policies = WorkPolicies(deps, clock=lambda: NOW)
    first = policies.run_once()
    assert (first.follow_ups, first.routed, first.refused) == (2, 3, [])
    again = policies.run_once()
    assert (again.follow_ups, again.routed) == (0, 0)
    view = WorkView(deps.read_store)

    # follow-ups: the case's agent and the opportunity's owner, due by the rules
    mine = view.my_tasks("ana", NOW)
    assert [t["task_id"] for t in mine["tasks"]][:2] == [str(ids["late"]), str(ids["later"])]
    assert mine["overdue"] == 1 and mine["tasks"][0]["overdue"]
    care = [t for t in mine["tasks"] if t["follow_up_rule"] == "complaint-care"]
    assert len(care) == 1 and care[0]["link_id"] == str(ids["complaint"])
    assert care[0]["due_at"] == (_at(-48) + timedelta(days=7)).isoformat()
    sam = view.my_tasks("sam", NOW)["tasks"]
    assert [(t["follow_up_rule"], t["link_id"]) for t in sam] == [("won-deal-care",
                                                                   str(ids["opp"]))]

    # routing: round-robin over ana and ben, each an event naming the rule
    load = {a["agent"]: a for a in view.supervisor(NOW)["agents"]}
    assert (load["ana"]["cases"], load["ben"]["cases"]) == (1, 1)
    queued = [t for t in view.my_tasks("ana", NOW)["tasks"] if t["task_id"] == str(ids["queued"])]
    assert queued and queued[0]["queue"] == "billing"  # the third turn
    assert view.turns() == {"billing": 3}
    routed = [e for e in deps.hub.stream(ids["bob"]) if isinstance(e, w.WorkRouted)]
    assert {(e.rule, e.outcome) for e in routed} == {("billing", "assigned")}

    # the day (Berlin), the calendar, the feed
    start, end = day_bounds(date(2026, 11, 24), 1, w.ZoneInfo("Europe/Berlin"))
    day = view.day("ana", start, end, NOW)["tasks"]
    assert day[0]["task_id"] == str(ids["late"]) and day[0]["overdue"]
    assert str(ids["later"]) in [t["task_id"] for t in day]
    cal = view.calendar(start, end, ["ana", "ben"], NOW)
    assert {s["staff"] for s in cal["staff"]} <= {"ana", "ben"}
    assert all(t["status"] != "cancelled" for s in cal["staff"] for t in s["tasks"])
    feed = view.feed("ana", NOW - timedelta(days=30))
    assert "cancelled" in {t["status"] for t in feed}

    # a supervisor move, then erasure redacts titles
    sup = view.supervisor(NOW)
    assert all(q["unassigned"] == 0 for q in sup["queues"]) and sup["waiting"] == []
    deps.hub.execute(wc.MoveWork(customer_id=ids["bob"], item_kind="task",
                                 item_id=ids["queued"], to_agent="ben"))
    deps.eraser.erase(ids["ada"], reason="test", actor="privacy")
    policies.refresh()
    assert {t["title"] for t in view.my_tasks("ana", NOW)["tasks"]
            if t["customer_id"] == str(ids["ada"])} == {None}
    assert str(ids["queued"]) in [t["task_id"] for t in view.my_tasks("ben", NOW)["tasks"]]

    source = deps.event_source()
    try:
        (result,) = rebuild(deps.read_store, source, [registry.get("work")], verify_only=True,
                            batch=7)
    finally:
        source.close()
    assert result.comparison.equal, [d.describe() for d in result.comparison.differences]


def test_commissions_per_owner_and_quarter_follow_owner_changes_and_reopens(
        deps: Dependencies) -> None:
    hub = deps.hub
    bob = uuid4()
    hub.execute(m.RegisterCustomer(customer_id=bob, name="Bob", occurred_at=_at(-24 * 300)))
    opps = [uuid4() for _ in range(4)]
    for i, (opp, owner, amount) in enumerate(zip(opps, ("sam", "sam", "lee", "sam"),
                                                 ("1000.10", "0.05", "200.00", "50.00"),
                                                 strict=True)):
        hub.execute(cs.OpenOpportunity(customer_id=bob, opportunity_id=opp, title=f"O{i}",
                                       amount=amount, currency="EUR",
                                       expected_close=date(2026, 12, 1), owner=owner,
                                       occurred_at=_at(-24 * 200)))
    hub.execute(cs.ChangeOpportunity(customer_id=bob, opportunity_id=opps[2], owner="sam",
                                     occurred_at=_at(-24 * 199)))
    won_at = [_at(-24 * 150), _at(-24 * 149), _at(-24 * 148), _at(-24 * 10)]
    for i, opp in enumerate(opps):
        hub.execute(cs.WinOpportunity(customer_id=bob, opportunity_id=opp,
                                      order_reference=f"O-{i}", occurred_at=won_at[i]))
    hub.execute(cs.ReopenOpportunity(customer_id=bob, opportunity_id=opps[3],
                                     occurred_at=_at(-24 * 9)))
    from projections.commissions.view import CommissionsView

    db = deps.read_store.connect()
    source = deps.event_source()
    try:
        from projections.engine import Worker

        Worker(db, source, [(registry.get("commissions"), None)]).catch_up()
        rates = w.CommissionRates(Decimal("0.03"), {"sam": Decimal("0.05")})
        got = CommissionsView(deps.read_store).commissions(
            _at(-24 * 365), _at(1), "quarter", rates)
        assert [(i["period"], i["owner"], i["deals"], i["won_amount"], i["commission"])
                for i in got["items"]] == [("2026-Q2", "sam", 3, "1200.15", "60.01")]
        (result,) = rebuild(deps.read_store, source, [registry.get("commissions")],
                            verify_only=True, batch=3)
        assert result.comparison.equal
    finally:
        source.close()
        db.close()
