"""Work orders: every transition and refusal, the overlap rule, and the two-stream assignment
(crash between the steps, a race of two assignments)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from commands import dispatch as cd
from commands import messages as m
from commands.errors import CustomerNotFoundError
from commands.hub import Hub
from commands.records import RecordNotFoundError, load
from domain import dispatch as d
from domain.errors import CustomerMergedError
from tests.support.hubs import make_hub

T = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
W1 = (T + timedelta(hours=1), T + timedelta(hours=3))


@pytest.fixture
def hub(sqlite_env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(sqlite_env)
    yield h
    h.close()


def _customer(hub: Hub) -> UUID:
    cid = uuid4()
    hub.execute(m.RegisterCustomer(customer_id=cid, name="Ada"))
    return cid


def _tech(hub: Hub, handle: str = "jonas", skills: tuple[str, ...] = ("boiler",)) -> UUID:
    tid = uuid4()
    hub.execute(cd.RegisterTechnician(technician_id=tid, handle=handle, skills=list(skills)))
    return tid


def _order(hub: Hub, cid: UUID, window: tuple[datetime, datetime] | None = W1,
           skill: str = "boiler") -> UUID:
    wo = uuid4()
    hub.execute(cd.CreateWorkOrder(customer_id=cid, work_order_id=wo, skill=skill,
                                   address="1 Mill Lane, Leeds", summary="no hot water"))
    if window is not None:
        hub.execute(cd.ScheduleWorkOrder(customer_id=cid, work_order_id=wo,
                                         window_start=window[0], window_end=window[1]))
    return wo


def _stage(hub: Hub, cid: UUID, wo: UUID) -> dict[str, Any]:
    return dict(hub.customer(cid).area("dispatch")[str(wo)])


def _bookings(hub: Hub, tid: UUID) -> dict[str, Any]:
    return dict(load(hub.context, "technician", tid).bookings)


def test_a_work_order_walks_every_stage_to_closed(hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    wo = _order(hub, cid, window=None)
    assert _stage(hub, cid, wo)["stage"] == "new"
    hub.execute(cd.ScheduleWorkOrder(customer_id=cid, work_order_id=wo,
                                     window_start=W1[0], window_end=W1[1]))
    assert _stage(hub, cid, wo)["stage"] == "scheduled"
    steps: list[tuple[m.Command, str]] = [
        (cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=tid), "assigned"),
        (cd.AcceptWorkOrder(customer_id=cid, work_order_id=wo, technician_id=tid), "accepted"),
        (cd.StartTravel(customer_id=cid, work_order_id=wo, technician_id=tid,
                        eta=W1[0]), "en_route"),
        (cd.RecordArrival(customer_id=cid, work_order_id=wo, technician_id=tid,
                          occurred_at=W1[0] + timedelta(minutes=5)), "on_site"),
        (cd.RecordWorkDone(customer_id=cid, work_order_id=wo, technician_id=tid,
                           minutes_spent=75, parts=[cd.PartUsed(part="valve-22", quantity=2)],
                           signature_ref="ab" * 32), "done"),
        (cd.CloseWorkOrder(customer_id=cid, work_order_id=wo, reason="paid"), "closed"),
    ]
    for cmd, stage in steps:
        assert hub.execute(cmd).event_ids
        assert _stage(hub, cid, wo)["stage"] == stage
        if stage == "assigned":
            assert str(wo) in _bookings(hub, tid)
    assert _bookings(hub, tid) == {}  # work done frees the window
    kinds = [type(e).__name__ for e in hub.stream(cid)][1:]
    assert kinds == ["WorkOrderCreated", "WorkOrderScheduled", "WorkOrderAssigned",
                     "WorkOrderAccepted", "WorkOrderEnRoute", "WorkOrderArrived",
                     "WorkOrderCompleted", "WorkOrderClosed"]


def test_a_late_synced_arrival_keeps_its_real_time_and_is_recorded_once(hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    wo = _order(hub, cid)
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=tid))
    hub.execute(cd.AcceptWorkOrder(customer_id=cid, work_order_id=wo, technician_id=tid))
    real = datetime.now(UTC) - timedelta(days=3)
    arrive = cd.RecordArrival(customer_id=cid, work_order_id=wo, technician_id=tid,
                              occurred_at=real)
    first = hub.execute(arrive)
    again = hub.execute(arrive)  # the tablet synced twice
    assert again.duplicate and again.versions == first.versions
    event = list(hub.stream(cid))[-1]
    assert isinstance(event, d.WorkOrderArrived) and event.channel == "visit"
    assert event.occurred_at == real and event.recorded_at - real > timedelta(days=2)


@pytest.mark.parametrize(("action", "stage", "reason"), [
    ("accept", "scheduled", "is scheduled: cannot accept"),
    ("complete", "assigned", "is assigned: cannot complete"),
    ("close", "on_site", "is on_site: cannot close"),
    ("cancel", "on_site", "is on_site: cannot cancel"),
    ("assign", "assigned", "is assigned: cannot assign"),
    ("schedule", "closed", "allowed from closed: nothing, it is finished"),
])
def test_moves_not_allowed_from_a_stage_are_refused_with_the_reason(
        action: str, stage: str, reason: str) -> None:
    with pytest.raises(d.WorkOrderTransitionError, match=reason):
        d.check_move({"stage": stage, "technician_id": "t1"}, "wo1", action, "t1")


def test_every_move_leads_where_the_table_says() -> None:
    for action, (starts, to) in d.MOVES.items():
        for stage in d.STAGES:
            order = {"stage": stage, "technician_id": "t1"}
            if stage in starts:
                assert d.check_move(order, "wo", action, "t1") == to
            else:
                with pytest.raises(d.WorkOrderTransitionError):
                    d.check_move(order, "wo", action, "t1")


def test_only_the_assigned_technician_moves_the_order_on(hub: Hub) -> None:
    cid, tid, other = _customer(hub), _tech(hub), _tech(hub, "priya")
    wo = _order(hub, cid)
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=tid))
    with pytest.raises(d.WrongTechnicianError, match=f"assigned to technician {tid}"):
        hub.execute(cd.AcceptWorkOrder(customer_id=cid, work_order_id=wo, technician_id=other))
    with pytest.raises(d.WorkOrderUnknownError):
        hub.execute(cd.AcceptWorkOrder(customer_id=cid, work_order_id=uuid4(), technician_id=tid))
    with pytest.raises(d.WorkOrderExistsError):
        hub.execute(cd.CreateWorkOrder(customer_id=cid, work_order_id=wo, skill="boiler",
                                       address="x", source_key="another"))
    with pytest.raises(CustomerNotFoundError):
        hub.execute(cd.CancelWorkOrder(customer_id=uuid4(), work_order_id=wo))
    with pytest.raises(RecordNotFoundError):
        hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=_order(hub, cid),
                                        technician_id=uuid4()))


def test_bad_windows_and_inputs_fail_validation() -> None:
    cid, wo = uuid4(), uuid4()
    with pytest.raises(ValidationError, match="window_end must be after window_start"):
        cd.ScheduleWorkOrder(customer_id=cid, work_order_id=wo, window_start=W1[1],
                             window_end=W1[0])
    with pytest.raises(ValidationError, match="at most"):
        cd.ScheduleWorkOrder(customer_id=cid, work_order_id=wo, window_start=W1[0],
                             window_end=W1[0] + timedelta(hours=13))
    with pytest.raises(ValidationError, match="both"):
        cd.CreateWorkOrder(customer_id=cid, work_order_id=wo, skill="boiler", address="x",
                           window_start=W1[0])
    with pytest.raises(ValidationError):
        cd.RecordWorkDone(customer_id=cid, work_order_id=wo, technician_id=uuid4(),
                          minutes_spent=-1)
    with pytest.raises(ValidationError):
        cd.RecordWorkDone(customer_id=cid, work_order_id=wo, technician_id=uuid4(),
                          minutes_spent=5, signature_ref="not-a-blob")
    with pytest.raises(d.InvalidWindowError):
        d.check_window(W1[1], W1[0])


def test_overlap_rule_is_half_open() -> None:
    booked = {"a": {"start": W1[0].isoformat(), "end": W1[1].isoformat()}}
    assert d.find_conflict(booked, "b", W1[1], W1[1] + timedelta(hours=1)) is None
    assert d.find_conflict(booked, "b", W1[0] - timedelta(hours=1), W1[0]) is None
    assert d.find_conflict(booked, "b", W1[1] - timedelta(minutes=1), W1[1]) == "a"
    assert d.find_conflict(booked, "a", *W1) is None  # its own booking


def test_an_overlapping_assignment_is_refused_and_a_skill_is_required(hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    first, second = _order(hub, cid), _order(hub, cid, (W1[0] + timedelta(hours=1),
                                                        W1[1] + timedelta(hours=1)))
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=first, technician_id=tid))
    with pytest.raises(d.TechnicianConflictError, match=f"for work order {first}"):
        hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=second,
                                        technician_id=tid))
    assert _stage(hub, cid, second)["stage"] == "scheduled"
    gas = _order(hub, cid, (W1[1], W1[1] + timedelta(hours=1)), skill="gas")
    with pytest.raises(d.SkillMissingError, match="lacks skill 'gas'"):
        hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=gas, technician_id=tid))
    hub.execute(cd.ChangeTechnicianSkills(technician_id=tid, skills=["boiler", "gas"]))
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=gas, technician_id=tid))
    assert set(_bookings(hub, tid)) == {str(first), str(gas)}


def test_decline_cancel_and_reassign_free_the_window_and_keep_the_history(hub: Hub) -> None:
    cid, jonas, priya = _customer(hub), _tech(hub), _tech(hub, "priya")
    wo = _order(hub, cid)
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=jonas))
    hub.execute(cd.DeclineWorkOrder(customer_id=cid, work_order_id=wo, technician_id=jonas,
                                    reason="van broke down"))
    assert _stage(hub, cid, wo)["stage"] == "scheduled" and _bookings(hub, jonas) == {}
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=jonas))
    hub.execute(cd.ReassignTechnician(customer_id=cid, work_order_id=wo, technician_id=priya))
    assert _bookings(hub, jonas) == {} and str(wo) in _bookings(hub, priya)
    assigned = [e for e in hub.stream(cid) if isinstance(e, d.WorkOrderAssigned)]
    assert [(e.technician_id, e.previous_technician_id) for e in assigned] == [
        (str(jonas), None), (str(jonas), None), (str(priya), str(jonas))]
    with pytest.raises(d.WorkOrderTransitionError, match="cannot reassign"):
        hub.execute(cd.ReassignTechnician(customer_id=cid, work_order_id=_order(hub, cid),
                                          technician_id=priya))
    hub.execute(cd.CancelWorkOrder(customer_id=cid, work_order_id=wo, reason="fixed it"))
    assert _bookings(hub, priya) == {}
    cancelled = list(hub.stream(cid))[-1]
    assert isinstance(cancelled, d.WorkOrderCancelled)
    assert cancelled.technician_id == str(priya)


def test_a_crash_between_booking_and_assigning_leaves_a_booking_a_retry_reuses(
        hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    wo = _order(hub, cid)
    cmd = cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=tid,
                              source_key="tablet-1")
    assert cd.book_window(hub, cmd) is not None  # the process dies after step 1
    assert str(wo) in _bookings(hub, tid)  # booked on the technician only
    assert _stage(hub, cid, wo)["stage"] == "scheduled"
    version = load(hub.context, "technician", tid).version
    # A retry under another key reuses the booking: nothing new on the technician.
    retry = hub.execute(cmd.model_copy(update={"source_key": "dispatcher-retry"}))
    assert retry.event_ids and _stage(hub, cid, wo)["stage"] == "assigned"
    assert load(hub.context, "technician", tid).version == version
    assert hub.execute(cmd).event_ids == []  # the first key again: nothing more


def test_a_retry_under_the_same_key_completes_a_half_done_assignment(hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    wo = _order(hub, cid)
    cmd = cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=tid,
                              source_key="tablet-2")
    cd.book_window(hub, cmd)
    done = hub.execute(cmd)
    assert done.event_ids and _stage(hub, cid, wo)["technician_id"] == str(tid)
    assert hub.execute(cmd).duplicate


def test_a_stale_booking_left_by_a_crash_is_released_when_another_order_needs_it(
        hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    crashed, wanted = _order(hub, cid), _order(hub, cid)
    cd.book_window(hub, cd.AssignTechnician(customer_id=cid, work_order_id=crashed,
                                            technician_id=tid, source_key="died"))
    assign = cd.AssignTechnician(customer_id=cid, work_order_id=wanted, technician_id=tid)
    with pytest.raises(d.TechnicianConflictError):  # fresh: it may still be in flight
        hub.execute(assign)
    later = hub.clock() + cd.STALE_BOOKING * 2
    hub.context = replace(hub.context, clock=lambda: later)
    hub.execute(assign)
    assert set(_bookings(hub, tid)) == {str(wanted)}
    assert _stage(hub, cid, crashed)["stage"] == "scheduled"


def test_two_racing_assignments_for_overlapping_windows_one_wins(hub: Hub) -> None:
    cid, tid = _customer(hub), _tech(hub)
    orders = [_order(hub, cid, (W1[0] + timedelta(minutes=10 * i), W1[1])) for i in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(orders))

    def assign(wo: UUID) -> None:
        barrier.wait()
        try:
            hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo,
                                            technician_id=tid))
            outcomes.append("won")
        except d.TechnicianConflictError:
            outcomes.append("refused")

    threads = [threading.Thread(target=assign, args=(wo,)) for wo in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
    (winner,) = _bookings(hub, tid)
    stages = {str(wo): _stage(hub, cid, wo)["stage"] for wo in orders}
    assert stages[winner] == "assigned"
    assert sorted(stages.values()) == ["assigned", "scheduled", "scheduled", "scheduled"]


def test_the_same_order_raced_to_two_technicians_leaves_one_booking(hub: Hub) -> None:
    cid, jonas, priya = _customer(hub), _tech(hub), _tech(hub, "priya")
    wo = _order(hub, cid)
    hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=jonas))
    with pytest.raises(d.WorkOrderTransitionError, match="cannot assign"):
        hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo, technician_id=priya))
    assert _bookings(hub, priya) == {} and str(wo) in _bookings(hub, jonas)


def test_a_merged_away_customers_work_orders_are_refused(hub: Hub) -> None:
    cid, other = _customer(hub), _customer(hub)
    wo = _order(hub, cid)
    hub.execute(m.MergeCustomers(source_id=cid, target_id=other))
    with pytest.raises(CustomerMergedError):
        hub.execute(cd.CancelWorkOrder(customer_id=cid, work_order_id=wo))


def test_flags_late_and_overdue_at_a_given_now() -> None:
    start, end = W1
    assert d.flags("assigned", start, end, None, start - timedelta(minutes=1)) == (False, False)
    assert d.flags("assigned", start, end, None, start + timedelta(minutes=1)) == (True, False)
    assert d.flags("on_site", start, end, start, end + timedelta(minutes=1)) == (False, True)
    assert d.flags("en_route", start, end, None, end + timedelta(minutes=1)) == (True, True)
    assert d.flags("done", start, end, start, end + timedelta(days=1)) == (False, False)
    assert d.flags("new", None, None, None, end) == (False, False)
