"""Work: the routing rules with a fixed clock and roster (pure), tasks through the write
model on the in-memory store (every transition and its refusals), follow-ups once per
trigger and rule, routing and rebalancing recorded as events naming the rule, and the
work settings file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands import messages as m
from commands import service as sc
from commands import work as wc
from commands.hub import Hub
from domain import service as s
from domain import work as w
from domain.work import AssignmentRule, Roster, Shift, Staff, WorkFacts, WorkPolicy
from touchstream.settings import SettingsError, load

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # a Tuesday; 10:30 in Berlin
WEEK = ("mon", "tue", "wed", "thu", "fri")
DAY = Shift(WEEK, time(8), time(16))
NIGHT = Shift(WEEK, time(22), time(6))
ROSTER = Roster("Europe/Berlin", (
    Staff("ana", "service", frozenset({"billing"}), frozenset({"de", "en"}), (DAY,)),
    Staff("ben", "service", frozenset({"billing"}), frozenset({"en"}), (DAY,)),
    Staff("cy", "service", frozenset({"billing", "tech"}), frozenset({"de"}), (NIGHT,)),
))
BILLING = AssignmentRule("billing-de", applies_to=("case",), queues=("billing",),
                         territories=("DE-1", "AT"), languages=("de",), skill="billing")
ANY_BILLING = AssignmentRule("billing-any", queues=("billing",), skill="billing",
                             strategy="round-robin")


def facts(**kw: Any) -> WorkFacts:
    return WorkFacts(**{"item_kind": "case", "queue": "billing", "channel": "email",
                        "country": "DE", "postcode": "10115", "language": "de", **kw})


# -- pure rules -----------------------------------------------------------------------
def test_the_first_matching_rule_with_someone_on_shift_speaking_the_language_decides() -> None:
    got = w.route([BILLING, ANY_BILLING], ROSTER, facts(), NOW, {}, {})
    assert got == w.Routing("ana", "billing-de", "least-loaded", "assigned")


def test_territory_is_a_country_or_a_country_and_postcode_prefix() -> None:
    assert w.in_territory(["DE-1"], "de", "10 115")
    assert not w.in_territory(["DE-1"], "DE", "20095")
    assert w.in_territory(["AT"], "AT", None)
    # outside the territory: the next rule (round-robin over everyone with the skill)
    got = w.route([BILLING, ANY_BILLING], ROSTER, facts(postcode="20095"), NOW, {}, {})
    assert (got.rule, got.agent) == ("billing-any", "ana")


def test_round_robin_takes_the_next_in_turn_and_least_loaded_the_lightest() -> None:
    picks = [w.route([ANY_BILLING], ROSTER, facts(), NOW, {}, {"billing-any": n}).agent
             for n in range(3)]
    assert picks == ["ana", "ben", "ana"]  # cy is off shift at 10:30
    lightest = replace(ANY_BILLING, strategy="least-loaded")
    assert w.route([lightest], ROSTER, facts(), NOW, {"ana": 3, "ben": 1}, {}).agent == "ben"
    assert w.route([lightest], ROSTER, facts(), NOW, {"ana": 1, "ben": 1}, {}).agent == "ana"


def test_shifts_follow_the_roster_zone_and_run_past_midnight() -> None:
    night = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # 00:30 Wednesday in Berlin
    assert [s.id for s in ROSTER.on_shift(night)] == ["cy"]
    saturday = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert ROSTER.on_shift(saturday) == []
    got = w.route([BILLING], ROSTER, facts(), saturday, {}, {})
    assert got == w.Routing(None, "billing-de", None, "nobody-on-shift")


def test_criteria_by_channel_category_partner_and_kind() -> None:
    rule = AssignmentRule("p", applies_to=("task",), channels=("phone",),
                          categories=("billing",), partners=("p-1",))
    ok = facts(item_kind="task", channel="phone", category="billing", partner_id="p-1")
    assert w.matches(rule, ok)
    for bad in ({"item_kind": "case"}, {"channel": "email"}, {"category": "tech"},
                {"partner_id": None}):
        assert not w.matches(rule, replace(ok, **bad))
    assert w.route([rule], ROSTER, facts(), NOW, {}, {}).outcome == "no-rule"


# -- the write model ----------------------------------------------------------------
POLICY = WorkPolicy(
    follow_ups=(w.FollowUpRule("care", "complaint-resolved", 7, "call", "Call back", "fu"),
                w.FollowUpRule("won", "deal-won", 14)),
    rules=(ANY_BILLING,), roster=ROSTER)


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: NOW,
            max_future_skew=timedelta(minutes=5))
    h.context = replace(h.context, policies={"work": POLICY})
    yield h
    h.close()


def customer(hub: Hub) -> UUID:
    return UUID(hub.execute(m.RegisterCustomer(
        name="Ada", contact_points=[m.ContactPointIn(kind="email", value="ada@example.com")],
        source_key=f"reg:{uuid4()}")).customer_id)


def events(hub: Hub, cid: UUID) -> list[Any]:
    return [e for e in hub.stream(cid) if type(e) in (*w.EVENTS, s.CaseAssigned)]


def task(hub: Hub, cid: UUID, **kw: Any) -> UUID:
    task_id = kw.pop("task_id", uuid4())
    hub.execute(wc.CreateTask(customer_id=cid, task_id=task_id, title="Call Ada",
                              due_at=NOW + timedelta(hours=2), **kw))
    return task_id


def test_a_task_is_created_assigned_rescheduled_and_completed_once(hub: Hub) -> None:
    cid = customer(hub)
    tid = task(hub, cid, assignee="ana")
    task(hub, cid, task_id=tid, assignee="ana")  # the same create again: one task
    hub.execute(wc.AssignTask(customer_id=cid, task_id=tid, assignee="ben"))
    hub.execute(wc.AssignTask(customer_id=cid, task_id=tid, assignee="ben"))  # no change
    later = NOW + timedelta(days=1)
    hub.execute(wc.RescheduleTask(customer_id=cid, task_id=tid, due_at=later,
                                  ends_at=later + timedelta(minutes=30),
                                  reminder_at=later - timedelta(minutes=15)))
    hub.execute(wc.CompleteTask(customer_id=cid, task_id=tid, outcome="Spoke to her"))
    assert [type(e).__name__ for e in events(hub, cid)] == [
        "TaskCreated", "TaskAssigned", "TaskRescheduled", "TaskCompleted"]
    assert events(hub, cid)[1].previous_assignee == "ana"
    with pytest.raises(w.TaskStateError, match="completed: cannot cancel"):
        hub.execute(wc.CancelTask(customer_id=cid, task_id=tid, source_key="again"))


def test_bad_times_and_links_are_refused_with_a_reason(hub: Hub) -> None:
    cid = customer(hub)
    with pytest.raises(w.TaskStateError, match="ends at or after"):
        task(hub, cid, ends_at=NOW)
    with pytest.raises(w.TaskStateError, match="reminder comes at or before"):
        task(hub, cid, reminder_at=NOW + timedelta(days=3))
    with pytest.raises(w.TaskUnknownError, match="no case"):
        task(hub, cid, link_kind="case", link_id=uuid4())
    with pytest.raises(w.TaskUnknownError, match="no task"):
        hub.execute(wc.CompleteTask(customer_id=cid, task_id=uuid4()))


def test_a_follow_up_is_created_once_per_trigger_and_rule_for_the_case_agent(hub: Hub) -> None:
    cid = customer(hub)
    case_id = uuid4()
    hub.execute(sc.OpenCase(customer_id=cid, case_id=case_id, case_kind="complaint",
                            category="billing", subject="Overcharged"))
    hub.execute(sc.AssignCase(customer_id=cid, case_id=case_id, queue="billing", agent="ben"))
    resolved = hub.execute(sc.ResolveCase(customer_id=cid, case_id=case_id,
                                          resolution_code="refund"))
    cmd = wc.CreateFollowUp(customer_id=cid, rule="care", trigger="complaint-resolved",
                            origin_event_id=UUID(resolved.event_ids[0]), link_id=case_id,
                            triggered_at=NOW)
    first = hub.execute(cmd)
    assert hub.execute(cmd).duplicate
    # a different key for the same trigger and rule still records nothing new
    assert not hub.execute(cmd.model_copy(update={"source_key": "other"})).event_ids
    (created,) = [e for e in events(hub, cid) if isinstance(e, w.TaskCreated)]
    assert str(created.event_id) == first.event_ids[0]
    assert (created.assignee, created.queue, created.rule, created.link_id) == (
        "ben", "fu", "care", str(case_id))
    assert created.due_at == (NOW + timedelta(days=7)).isoformat()
    assert created.task_id == w.follow_up_task_id(resolved.event_ids[0], "care")
    with pytest.raises(wc.WorkRuleUnknownError):
        hub.execute(cmd.model_copy(update={"rule": "nope"}))


def test_routing_records_the_rule_and_the_assignment_once(hub: Hub) -> None:
    cid = customer(hub)
    hub.execute(m.ChangeProfile(customer_id=cid, changes={"language": "de"},
                                source_key=f"p:{cid}"))
    case_id = uuid4()
    hub.execute(sc.OpenCase(customer_id=cid, case_id=case_id, category="billing",
                            queue="billing", subject="Invoice"))
    cmd = wc.RouteWork(customer_id=cid, item_kind="case", item_id=case_id,
                       turns={"billing-any": 1})
    hub.execute(cmd)
    hub.execute(cmd.model_copy(update={"source_key": "again"}))  # routed already: nothing
    routed, assigned = events(hub, cid)
    assert (routed.rule, routed.agent, routed.outcome) == ("billing-any", "ben", "assigned")
    assert isinstance(assigned, s.CaseAssigned) and assigned.agent == "ben"
    # the supervisor moves it: an event naming both, then the assignment
    hub.execute(wc.MoveWork(customer_id=cid, item_kind="case", item_id=case_id,
                            to_agent="ana", reason="ben is at capacity"))
    moved, reassigned = events(hub, cid)[2:]
    assert (moved.from_agent, moved.to_agent, reassigned.agent) == ("ben", "ana", "ana")


def test_an_unmatched_item_is_routed_once_and_stays_in_its_queue(hub: Hub) -> None:
    cid = customer(hub)
    tid = task(hub, cid, queue="sales")
    hub.execute(wc.RouteWork(customer_id=cid, item_kind="task", item_id=tid))
    (_, routed) = events(hub, cid)
    assert (routed.agent, routed.rule, routed.outcome) == (None, None, "no-rule")


def test_the_work_file_is_read_and_a_bad_one_named(tmp_path: Path) -> None:
    good = tmp_path / "work.toml"
    good.write_text('zone = "Europe/Berlin"\n[[staff]]\nid = "ana"\nskills = ["billing"]\n'
                    'shifts = [{days = ["mon"], start = "08:00", end = "16:00"}]\n'
                    '[[rules]]\nname = "r"\nterritories = ["DE-1"]\nstrategy = "round-robin"\n')
    policy = load({"TOUCHSTREAM_WORK_FILE": str(good)}).work.policy()
    assert policy.roster.staff[0].shifts[0].start == time(8)
    assert policy.rules[0].territories == ("DE-1",)
    assert [f.name for f in policy.follow_ups] == ["complaint-care", "won-deal-care"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "r"\nstrategy = "random"\n')
    with pytest.raises(SettingsError, match="TOUCHSTREAM_WORK_FILE.*strategy 'random'"):
        load({"TOUCHSTREAM_WORK_FILE": str(bad)})


def test_commission_is_the_won_total_times_the_owners_rate_half_up_to_cents() -> None:
    rates = w.CommissionRates(Decimal("0.03"), {"sam": Decimal("0.05")})
    assert rates.rate("sam") == Decimal("0.05") and rates.rate("lee") == Decimal("0.03")
    assert w.commission(["1000.10", "0.05"], rates.rate("sam")) == (
        Decimal("1000.15"), Decimal("50.01"))  # 50.0075 → 50.01
    assert w.commission([], Decimal("0.5")) == (Decimal(0), Decimal("0.00"))


def test_commission_rates_come_from_the_work_file(tmp_path: Path) -> None:
    f = tmp_path / "work.toml"
    f.write_text('[commissions]\ndefault_rate = "0.02"\nrates = { sam = "0.05" }\n')
    rates = load({"TOUCHSTREAM_WORK_FILE": str(f)}).work.policy().commissions
    assert (rates.default, rates.rate("sam")) == (Decimal("0.02"), Decimal("0.05"))
    f.write_text('[commissions]\nrates = { sam = "5" }\n')
    with pytest.raises(SettingsError, match="a rate is a fraction"):
        load({"TOUCHSTREAM_WORK_FILE": str(f)})
