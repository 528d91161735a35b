"""The contracts read model (a customer's service contracts and installed base) on SQLite
and PostgreSQL, and the business read models following a merge to the survivor and back
on an unmerge — live and on a rebuild alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from commands import messages as m
from commands import sales as s
from commands import service as sc
from commands.hub import Hub
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections import registry
from projections.contracts.view import ContractsView
from projections.engine import Worker
from projections.orders.view import OrdersView
from projections.pipeline.view import PipelineView
from projections.service.view import ServiceView
from projections.store import ReadStore
from replays.rebuild import rebuild
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

AT = datetime(2026, 6, 1, 9, tzinfo=UTC)
MODELS = ("contracts", "service", "pipeline", "orders")


def catch_up(env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    try:
        source = Dependencies(settings_mod.load(env), hub=hub).event_source()
        Worker(db, source, [(registry.get(n), None) for n in MODELS], batch=5).catch_up()
    finally:
        db.close()


def rebuilt_equal(env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    source = Dependencies(settings_mod.load(env), hub=hub).event_source()
    for result in rebuild(store, source, [registry.get(n) for n in MODELS], verify_only=True,
                          batch=3):
        assert result.comparison.equal, [d.describe() for d in result.comparison.differences]


def test_contracts_products_and_merges_follow_the_survivor(read_env: dict[str, str],
                                                          hub: Hub, store: ReadStore) -> None:
    ann, ben = (UUID(hub.execute(m.RegisterCustomer(
        name=n, source_key=f"reg-{n}", occurred_at=AT - timedelta(days=800))).customer_id)
        for n in ("Ann", "Ben"))
    pump, meter = uuid4(), uuid4()
    active, old, future = uuid4(), uuid4(), uuid4()
    hub.execute(sc.RecordInstalledProduct(customer_id=ann, product_id=pump, product_code="PUMP-2",
                                          serial_number="P-1", installed_on=date(2024, 5, 1),
                                          occurred_at=AT - timedelta(days=700)))
    hub.execute(sc.RecordInstalledProduct(customer_id=ann, product_id=meter,
                                          product_code="METER-S", serial_number="M-1",
                                          occurred_at=AT - timedelta(days=700)))
    hub.execute(sc.RemoveInstalledProduct(customer_id=ann, product_id=meter, reason="swapped",
                                          occurred_at=AT - timedelta(days=30)))
    for cid, start, end, codes in ((old, date(2024, 1, 1), date(2024, 12, 31), []),
                                   (active, date(2026, 1, 1), date(2026, 12, 31), ["PUMP-2"]),
                                   (future, date(2027, 1, 1), date(2027, 12, 31), [])):
        hub.execute(sc.AddContract(customer_id=ann, contract_id=cid, starts_on=start, ends_on=end,
                                   covered_products=codes, sla_policy="standard",
                                   visits_included=2, occurred_at=AT - timedelta(days=600)))
    case, opportunity = uuid4(), uuid4()
    hub.execute(sc.OpenCase(customer_id=ann, case_id=case, category="repair", subject="Pump",
                            product_id=pump, occurred_at=AT))
    hub.execute(s.OpenOpportunity(customer_id=ann, opportunity_id=opportunity, title="Pump 3",
                                  amount="900.00", currency="EUR",
                                  expected_close=date(2026, 7, 1), owner="sam",
                                  occurred_at=AT))
    hub.execute(s.PlaceOrder(customer_id=ann, order_number="M-1", total="90.00", currency="EUR",
                             lines=[s.LineIn(product_code="SEAL", quantity="1",
                                             unit_price="90.00")], occurred_at=AT))
    catch_up(read_env, hub, store)
    contracts = ContractsView(store)
    mine = contracts.of_customer(str(ann), date(2026, 6, 1))
    assert {c["contract_id"]: c["state"] for c in mine["contracts"]} == {
        str(active): "active", str(old): "expired", str(future): "upcoming"}
    assert mine["active_contracts"] == 1 and mine["installed_products"] == 1
    by_id = {p["product_id"]: p for p in mine["products"]}
    assert by_id[str(pump)]["covered_by"] == [str(active)] and by_id[str(pump)]["installed"]
    assert not by_id[str(meter)]["installed"] and by_id[str(meter)]["covered_by"] == []
    # before the removal the meter was installed, though no contract in force covered it
    earlier = contracts.of_customer(str(ann), date(2025, 6, 1))
    assert earlier["installed_products"] == 2 and earlier["active_contracts"] == 0
    hub.execute(sc.EndContract(customer_id=ann, contract_id=active, ends_on=date(2026, 5, 31)))
    catch_up(read_env, hub, store)
    ended = contracts.of_customer(str(ann), date(2026, 6, 1))
    assert ended["active_contracts"] == 0
    assert next(c for c in ended["contracts"] if c["contract_id"] == str(active))[
        "ended_early_at"] is not None

    hub.execute(m.MergeCustomers(source_id=ann, target_id=ben))
    catch_up(read_env, hub, store)
    service, pipeline, orders = ServiceView(store, config_from_mapping(DEFAULT_CONFIG)), \
        PipelineView(store), OrdersView(store)

    def under(root: UUID) -> tuple[int, list[str], list[str], list[str]]:
        return (len(contracts.of_customer(str(root), date(2026, 6, 1))["contracts"]),
                [c["case_id"] for c in service.customer_cases(str(root))["cases"]],
                [o["opportunity_id"] for o in pipeline.of_customer(str(root))],
                [o["order_number"] for o in orders.of_customer(str(root))])

    assert under(ben) == (3, [str(case)], [str(opportunity)], ["M-1"])
    assert service.customer_cases(str(ben))["customer_id"] == str(ben)
    rebuilt_equal(read_env, hub, store)
    hub.execute(m.UnmergeCustomer(source_id=ann))
    catch_up(read_env, hub, store)
    assert under(ben) == (0, [], [], [])
    assert under(ann) == (3, [str(case)], [str(opportunity)], ["M-1"])
    rebuilt_equal(read_env, hub, store)
