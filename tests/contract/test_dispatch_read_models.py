"""The dispatch board and the call-centre figures over the real write model, on SQLite and
PostgreSQL alike: late and overdue at a given now, travel windows, utilisation, a signature
shredded with its customer, figures per queue and hour; a rebuild equals the live model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from commands import dispatch as cd
from commands import messages as m
from domain import dispatch as d
from projections import registry
from projections.callcentre.view import CallCentreView
from projections.dispatch.view import DispatchView
from projections.engine import Worker
from replays.rebuild import rebuild
from touchstream.bootstrap import Dependencies, bootstrap

DAY = datetime(2026, 9, 21, tzinfo=UTC)  # a Monday


@pytest.fixture(params=["sqlite", "postgres"])
def deps(request: pytest.FixtureRequest) -> Iterator[Dependencies]:
    env = dict(request.getfixturevalue(f"{request.param}_env"))
    found = bootstrap(env)
    yield found
    found.close()


def _catch_up(deps: Dependencies) -> None:
    db = deps.read_store.connect()
    source = deps.event_source()
    try:
        Worker(db, source, [(registry.get(n), None) for n in ("dispatch", "callcentre")],
               batch=3).catch_up()
    finally:
        db.close()
        source.close()


def _at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def _scenario(deps: Dependencies) -> dict[str, UUID]:
    """Two customers, two technicians, five work orders, four calls (one voided)."""
    hub = deps.hub
    ids = {"ada": uuid4(), "bob": uuid4(), "jonas": uuid4(), "priya": uuid4()}
    ada, bob, jonas, priya = ids["ada"], ids["bob"], ids["jonas"], ids["priya"]
    hub.execute(m.RegisterCustomer(customer_id=ada, name="Ada"))
    hub.execute(m.RegisterCustomer(customer_id=bob, name="Bob"))
    hub.execute(cd.RegisterTechnician(technician_id=jonas, handle="jonas", skills=["boiler"]))
    hub.execute(cd.RegisterTechnician(technician_id=priya, handle="priya",
                                      skills=["boiler", "gas"]))

    def order(name: str, cid: UUID, start: float | None, hours: float,
              tech: UUID | None) -> None:
        wo = ids[name] = uuid4()
        hub.execute(cd.CreateWorkOrder(customer_id=cid, work_order_id=wo, skill="boiler",
                                       address=f"{name} street", summary=f"{name} broken",
                                       occurred_at=_at(-48)))
        if start is not None:
            hub.execute(cd.ScheduleWorkOrder(
                customer_id=cid, work_order_id=wo, window_start=_at(start),
                window_end=_at(start + hours), occurred_at=_at(-47)))
        if tech is not None:
            hub.execute(cd.AssignTechnician(customer_id=cid, work_order_id=wo,
                                            technician_id=tech, occurred_at=_at(-46)))

    order("done", ada, 8, 2, jonas)
    order("late", bob, 11, 2, jonas)
    order("moved", ada, 14, 2, jonas)
    order("waiting", bob, 14, 1, None)
    order("undated", ada, None, 0, None)
    hub.execute(cd.AcceptWorkOrder(customer_id=ada, work_order_id=ids["done"],
                                   technician_id=jonas))
    hub.execute(cd.RecordArrival(customer_id=ada, work_order_id=ids["done"],
                                 technician_id=jonas, occurred_at=_at(8.25)))
    hub.execute(cd.RecordWorkDone(
        customer_id=ada, work_order_id=ids["done"], technician_id=jonas, minutes_spent=95,
        signature_ref=deps.blobs.put(b"signature-of-ada"), occurred_at=_at(10),
        parts=[cd.PartUsed(part="valve-22", quantity=1)]))
    hub.execute(cd.ReassignTechnician(customer_id=ada, work_order_id=ids["moved"],
                                      technician_id=priya))
    with pytest.raises(d.TechnicianConflictError, match="overlaps"):
        hub.execute(cd.AssignTechnician(customer_id=bob, work_order_id=ids["waiting"],
                                        technician_id=priya))

    def log(call: str, at: float, **fields: object) -> m.LogCall:
        return m.LogCall(customer_id=bob, call_id=call, occurred_at=_at(at),  # type: ignore[arg-type]
                         **fields)

    hub.execute(log("A", 9.1, queue="support", outcome="answered", wait_s=10, duration_s=300))
    for seq, (step, minutes) in enumerate([("offered", 0), ("queued", 0.1),
                                            ("abandoned", 0.6)]):
        hub.execute(m.RecordCallStep(customer_id=bob, call_id="B", step=step, sequence=seq,  # type: ignore[arg-type]
                                     queue="support", occurred_at=_at(9.2 + minutes / 60)))
    voided = hub.execute(log("C", 9.5, queue="support", outcome="answered", wait_s=40,
                             duration_s=100))
    hub.execute(m.VoidTouchpoint(customer_id=bob, event_id=UUID(voided.event_ids[0]),
                                 reason="test call"))
    hub.execute(log("D", 10.2, queue="billing", outcome="missed"))
    return ids


def test_the_board_reads_the_same_on_every_store(deps: Dependencies) -> None:
    ids = _scenario(deps)
    _catch_up(deps)
    view = DispatchView(deps.read_store)
    board = view.board(DAY.date(), 1, now=_at(11.5))
    by = {t["handle"]: t["days"][0] for t in board["technicians"]}
    jonas = by["jonas"]
    assert [o["work_order_id"] for o in jonas["orders"]] == [str(ids["done"]), str(ids["late"])]
    assert (jonas["planned_minutes"], jonas["worked_minutes"], jonas["utilisation"]) == (
        240, 95, 0.5)
    assert jonas["travel"] == [{"after": str(ids["done"]), "before": str(ids["late"]),
                                "start": _at(10).isoformat(), "end": _at(11).isoformat(),
                                "minutes": 60}]
    assert [o["work_order_id"] for o in by["priya"]["orders"]] == [str(ids["moved"])]
    assert by["priya"]["utilisation"] == 0.25
    assert {o["work_order_id"] for o in board["unassigned"]} == {str(ids["waiting"]),
                                                                 str(ids["undated"])}
    late = next(o for o in jonas["orders"] if o["work_order_id"] == str(ids["late"]))
    assert (late["late"], late["overdue"]) == (True, False)
    assert (board["late"], board["overdue"]) == (1, 0)
    assert [o["work_order_id"] for o in view.attention(_at(13.5))] == [str(ids["late"])]
    attention = view.attention(_at(16.5))
    assert attention[0]["work_order_id"] == str(ids["late"])  # the oldest window first
    assert {(o["work_order_id"], o["late"], o["overdue"]) for o in attention} == {
        (str(ids["late"]), True, True), (str(ids["moved"]), True, True),
        (str(ids["waiting"]), False, True)}

    moved = view.work_order(str(ids["moved"]), now=_at(12))
    assert moved is not None and moved["address"] == "moved street"
    assert [(h["action"], h["technician_id"]) for h in moved["history"]] == [
        ("created", None), ("scheduled", None), ("assigned", str(ids["jonas"])),
        ("assigned", str(ids["priya"]))]
    done = view.work_order(str(ids["done"]), now=_at(12))
    assert done is not None and done["parts"] == [{"part": "valve-22", "quantity": 1}]
    assert done["arrived_at"] == _at(8.25).isoformat() and done["minutes_spent"] == 95
    mine = view.of_customers([str(ids["ada"])], now=_at(12))
    assert {o["work_order_id"] for o in mine} == {str(ids["done"]), str(ids["moved"]),
                                                  str(ids["undated"])}

    figures = CallCentreView(deps.read_store).figures(DAY, DAY + timedelta(days=1))
    assert [(f["queue"], f["bucket"], f["offered"], f["answered"], f["abandoned"], f["missed"])
            for f in figures] == [("support", _at(9).isoformat(), 2, 1, 1, 0),
                                  ("billing", _at(10).isoformat(), 1, 0, 0, 1)]
    support = figures[0]
    assert (support["avg_wait_s"], support["avg_talk_s"], support["abandonment_rate"],
            support["service_level"], support["avg_abandon_wait_s"]) == (10.0, 300.0, 0.5,
                                                                          1.0, 36.0)
    daily = CallCentreView(deps.read_store).figures(DAY, DAY + timedelta(days=1), bucket="day",
                                                    queue="support")
    assert [(f["bucket"], f["offered"]) for f in daily] == [(DAY.isoformat(), 2)]

    report = deps.eraser.erase(ids["ada"], "ticket 9", "privacy")
    assert report.blobs_shredded == 1
    _catch_up(deps)
    erased = view.work_order(str(ids["done"]), now=_at(12))
    assert erased is not None and erased["address"] is None and erased["summary"] is None
    assert erased["minutes_spent"] == 95  # the figures stay

    source = deps.event_source()
    try:
        results = rebuild(deps.read_store, source,
                          [registry.get("dispatch"), registry.get("callcentre")],
                          verify_only=True, batch=5)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        diff.describe() for r in results for diff in r.comparison.differences]
