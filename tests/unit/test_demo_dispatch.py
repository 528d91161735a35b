"""The dispatch demo: five technicians, a fortnight of work orders that seed without a refused
move, and a board with late and overdue work at the demo's now."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from commands import messages as m
from projections import registry
from projections.dispatch.view import DispatchView
from projections.engine import Worker
from tests.conftest import store_env
from touchstream import demo, demo_dispatch
from touchstream.bootstrap import bootstrap


def _plan(customers: int) -> tuple[list[m.Command], list[bytes], list[UUID]]:
    ids = [demo.customer_id(1, i) for i in range(customers)]
    commands: list[m.Command] = [m.RegisterCustomer(customer_id=c, name=f"C{i}",
                                                    source_key=f"c{i}",
                                                    occurred_at=demo.DEFAULT_UNTIL
                                                    - timedelta(days=60))
                                 for i, c in enumerate(ids)]
    blobs: list[bytes] = []
    demo_dispatch.plan_work_orders(commands, blobs, ids, 1, demo.DEFAULT_UNTIL)
    return commands, blobs, ids


def test_the_full_plan_covers_every_transition_for_five_technicians_in_a_fortnight() -> None:
    commands, blobs, _ = _plan(demo_dispatch.CUSTOMER_POOL)
    kinds = Counter(c.kind for c in commands)
    assert kinds["register-technician"] == 5
    assert {"create-work-order", "schedule-work-order", "assign-technician",
            "reassign-technician", "accept-work-order", "decline-work-order", "start-travel",
            "record-arrival", "record-work-done", "close-work-order",
            "cancel-work-order"} <= set(kinds)
    windows = [c.window_start for c in commands if c.kind == "schedule-work-order"]
    assert max(windows) - min(windows) < timedelta(days=14)  # type: ignore[operator]
    assert all(c.occurred_at is not None and c.occurred_at < demo.DEFAULT_UNTIL
               for c in commands)
    assert len(blobs) == kinds["record-work-done"]
    again, _, _ = _plan(demo_dispatch.CUSTOMER_POOL)
    assert [c.model_dump() for c in again] == [c.model_dump() for c in commands]


def test_a_small_plan_seeds_every_move_and_the_board_has_late_and_overdue_work(
        tmp_path: Path) -> None:
    commands, blobs, _ = _plan(12)
    deps = bootstrap(store_env("sqlite", tmp_path / "data"))
    try:
        plan = demo.DemoPlan(commands=commands, blobs=blobs, customers=12)
        report = demo.seed(deps.hub, plan, deps.blobs)
        assert report.duplicates == 0
        db = deps.read_store.connect()
        source = deps.event_source()
        Worker(db, source, [(registry.get("dispatch"), None)]).catch_up()
        db.close()
        source.close()
        now = demo_dispatch.demo_now(demo.DEFAULT_UNTIL)
        board = DispatchView(deps.read_store).board((now - timedelta(days=13)).date(), 14, now)
        assert board["late"] > 0 and board["overdue"] > 0
        assert len(board["technicians"]) == 5
        assert any(d["travel"] for t in board["technicians"] for d in t["days"])
    finally:
        deps.close()
