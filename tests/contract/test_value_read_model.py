"""The value read model over the real write model, on SQLite and PostgreSQL: the
hand-computed figures of ``tests.support.value``, a voided interaction, a merge and an
erasure, and a rebuild that equals the live model."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from commands import messages as m
from commands.hub import Hub
from domain.value import ValuePolicy
from projections import registry
from projections.engine import Worker
from projections.store import ReadStore
from projections.value.view import Cut, ValueView
from replays.rebuild import rebuild
from tests.support.value import AS_OF, TIERS, TRIANGLE, WINDOW, seed_value
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

POLICY = ValuePolicy(churn_window_months=WINDOW, margin=Decimal("0.3"),
                     discount_rate=Decimal(0))


def _catch_up(deps: Dependencies, store: ReadStore) -> None:
    db, source = store.connect(), deps.event_source()
    try:
        Worker(db, source, [(registry.get("value"), None)], batch=4).catch_up()
    finally:
        db.close()
        source.close()


def _cells(view: ValueView) -> dict[tuple[str, int], int]:
    return {(c.cohort, c.period): c.active for c in view.cohorts(Cut(AS_OF), POLICY).cells}


def test_value_figures_follow_voids_merges_and_erasure_and_rebuild_equal_on_every_store(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    deps = Dependencies(settings_mod.load(read_env), hub=hub)
    ids = seed_value(hub)
    letter = {v: k for k, v in ids.items()}
    _catch_up(deps, store)
    view = ValueView(store)
    found = view.cohorts(Cut(AS_OF), POLICY)
    assert {(c.cohort, c.period): (c.active, c.churned, c.returned, c.churn_rate,
                                   c.retention_rate, c.share) for c in found.cells} == TRIANGLE
    _, tiers, _ = view.tiers(Cut(AS_OF), date(2026, 1, 1), POLICY)
    assert {letter[c]: t for c, t in tiers.items()} == TIERS

    # c's call in May was recorded by mistake: c no longer comes back in May
    (call,) = view.events([ids["c"]], Cut(AS_OF), 0, 10, kinds=("interaction",))
    hub.execute(m.VoidTouchpoint(customer_id=UUID(ids["c"]), event_id=UUID(call["event_id"]),
                                 reason="wrong customer"))
    # b was a duplicate of a: one customer, revenue 1100, the January cohort shrinks to 4
    hub.execute(m.MergeCustomers(source_id=UUID(ids["b"]), target_id=UUID(ids["a"])))
    deps.eraser.erase(UUID(ids["h"]), "ticket 9", "admin")
    _catch_up(deps, store)
    cells = _cells(view)
    assert (cells[("2026-01", 0)], cells[("2026-01", 4)]) == (4, 1)
    clv = {letter[r["customer_id"]]: r for r in view.clv(Cut(AS_OF), POLICY)}
    assert (clv["a"]["revenue"], clv["a"]["orders"], "b" in clv) == ("1100.00", 7, False)
    assert clv["h"]["revenue"] == "80.00"  # amounts are not personal: an erasure keeps them
    merged = view.events([ids["a"]], Cut(AS_OF), 0, 100, kinds=("order_placed",))
    assert {e["detail"].get("merged_from") for e in merged} == {None, ids["b"]}

    source = deps.event_source()
    try:
        results = rebuild(store, source, registry.select(["value"]), verify_only=True, batch=3)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]
