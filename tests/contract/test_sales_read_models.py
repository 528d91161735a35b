"""The pipeline and orders read models over the real write model, on SQLite and PostgreSQL:
the hand-computed figures of ``tests.support.sales``, partner scope, erasure, drill-down,
and a rebuild that equals the live models."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from commands import messages as m
from commands.hub import Hub
from projections import registry
from projections.engine import Worker
from projections.lifecycle.view import LifecycleView
from projections.orders.view import OrdersView
from projections.pipeline.view import PipelineView
from projections.store import ReadStore
from replays.rebuild import rebuild
from tests.support.sales import at, seed_sales
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

SALES = ["pipeline", "orders", "lifecycle", "timeline"]


def _catch_up(read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    try:
        Worker(db, source, [(p, None) for p in registry.select(SALES)], batch=5).catch_up()
    finally:
        db.close()
        source.close()


def test_sales_figures_read_as_computed_by_hand_on_every_store(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    ids = seed_sales(hub)
    hub.execute(m.ChangeLifecycleStage(customer_id=UUID(ids["ada"]), to_stage="current",
                                       occurred_at=at(30)))
    _catch_up(read_env, hub, store)
    pipeline, orders = PipelineView(store), OrdersView(store)

    assert pipeline.open_by("stage") == [
        {"stage": "negotiation", "currency": "USD", "count": 1, "amount": "300.50",
         "weighted": "240.40"},
        {"stage": "proposal", "currency": "EUR", "count": 1, "amount": "1000.00",
         "weighted": "500.00"}]
    assert pipeline.forecast() == [
        {"close_month": "2026-03", "owner": "mia", "currency": "EUR", "count": 1,
         "amount": "1000.00", "weighted": "500.00"},
        {"close_month": "2026-03", "owner": "mia", "currency": "USD", "count": 1,
         "amount": "300.50", "weighted": "240.40"}]
    stages = {s["stage"]: s for s in pipeline.stages()}
    assert (stages["qualification"]["entered"], stages["qualification"]["advanced"],
            stages["qualification"]["conversion_rate"], stages["qualification"]["average_days"]
            ) == (4, 3, 0.75, 9.5)
    assert (stages["proposal"]["entered"], stages["proposal"]["left"],
            stages["proposal"]["average_days"]) == (2, 1, 10.0)
    assert stages["negotiation"]["conversion_rate"] is None
    assert pipeline.outcomes() == {"open": 2, "won": 1, "lost": 1, "win_rate": 0.5,
                                   "average_sales_cycle_days": 25.0}
    # partner p-1 has ada only
    assert [r["stage"] for r in pipeline.open_by("stage", "p-1")] == ["proposal"]
    assert pipeline.outcomes("p-2")["open"] == 0
    assert {s["stage"]: s["entered"] for s in pipeline.stages("p-1")} == {
        "qualification": 2, "needs analysis": 1, "proposal": 2}

    assert orders.per_month() == [
        {"month": "2026-01", "currency": "EUR", "orders": 1, "gross": "200.00", "returns": 1,
         "refunded": "50.00", "revenue": "150.00", "average_order_value": "150.00"},
        {"month": "2026-02", "currency": "EUR", "orders": 2, "gross": "2099.99", "returns": 0,
         "refunded": "0.00", "revenue": "2099.99", "average_order_value": "1050.00"}]
    by_customer = {r["customer_id"]: r for r in orders.per_customer()[0]}
    assert by_customer[ids["ada"]]["revenue"] == "2150.00"
    assert by_customer[ids["bob"]]["orders"] == 0  # cancelled
    statuses = {o["order_number"]: o["status"] for o in orders.of_customer(ids["ada"])}
    assert statuses == {"SO-1": "partly returned", "SO-2": "placed"}

    rfm = {r["customer_id"]: r for r in orders.rfm(date(2026, 2, 28), 365, "EUR")}
    assert {c: r["rfm"] for c, r in rfm.items()} == {ids["ada"]: "133", ids["cy"]: "311"}
    assert rfm[ids["ada"]]["monetary"] == "2150.00"
    (early,) = orders.rfm(date(2026, 1, 15), 365, "EUR")  # before the refund: 200.00
    assert (early["customer_id"], early["monetary"], early["recency_days"]) == (
        ids["ada"], "200.00", 5)

    events, after = pipeline.event_ids(status="won")
    assert {e["opportunity_id"] for e in events} == {ids["o2"]} and after is None
    assert [e["kind"] for e in events] == ["opportunity_opened", "opportunity_stage_moved",
                                           "opportunity_stage_moved", "opportunity_won"]
    first, nxt = orders.event_ids(month="2026-01", limit=2)
    rest, end = orders.event_ids(month="2026-01", after=nxt or 0, limit=2)
    assert nxt is not None and end is None
    assert [e["kind"] for e in first + rest] == ["order_placed", "order_paid", "order_shipped",
                                                "order_returned"]

    lifecycle = LifecycleView(store)
    assert lifecycle.counts(date(2026, 1, 15)) == {"prospect": 3, "target": 0, "current": 0,
                                                   "lost": 0}
    assert lifecycle.counts(date(2026, 3, 1)) == {"prospect": 2, "target": 0, "current": 1,
                                                  "lost": 0}
    assert lifecycle.counts(date(2026, 3, 1), "p-1")["current"] == 1
    assert lifecycle.flows() == [{"month": "2026-01", "to_stage": "current", "count": 1},
                                 {"month": "2026-01", "to_stage": "prospect", "count": 3}]
    assert [(h["from_stage"], h["to_stage"]) for h in lifecycle.history(ids["ada"])] == [
        (None, "prospect"), ("prospect", "current")]
    changes, _ = lifecycle.event_ids(to_stage="current")
    assert [c["kind"] for c in changes] == ["lifecycle_stage_changed"]

    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    try:
        results = rebuild(store, source, registry.select(SALES), verify_only=True, batch=3)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def test_an_erasure_clears_opportunity_titles_live_and_in_a_rebuild(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    deps = Dependencies(settings_mod.load(read_env), hub=hub)
    ids = seed_sales(hub)
    _catch_up(read_env, hub, store)
    assert {o["title"] for o in PipelineView(store).of_customer(ids["ada"])} == {
        "Boilers for Leeds", "Heat pumps"}
    deps.eraser.erase(UUID(ids["ada"]), "ticket 7", "admin")
    _catch_up(read_env, hub, store)
    opps = PipelineView(store).of_customer(ids["ada"])
    assert {o["title"] for o in opps} == {None} and {o["amount"] for o in opps} == {
        "1000.00", "2000.00"}
    source = deps.event_source()
    try:
        results = rebuild(store, source, registry.select(["pipeline"]), verify_only=True)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]
