"""Value and retention: the pure rules, and the twelve-customer story of ``tests.support.value``
read back from the value read model with the figures computed by hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from commands.hub import Hub
from domain import value as rules
from projections import registry
from projections.engine import Worker
from projections.store import ReadStore
from projections.value.view import Cut, ValueView, end_of
from tests.support.hubs import make_hub
from tests.support.readside import ListSource
from tests.support.value import (
    AS_OF,
    REVENUE,
    SIZES,
    TIER_SUMMARY,
    TIERS,
    TRIANGLE,
    WINDOW,
    clv_at_zero_rate,
    seed_value,
)
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

POLICY = rules.ValuePolicy(churn_window_months=WINDOW, margin=Decimal("0.3"),
                           discount_rate=Decimal(0))


def _t(y: int, mo: int, d: int = 10) -> datetime:
    return datetime(y, mo, d, 12, tzinfo=UTC)


# -- the rules alone -----------------------------------------------------------

def test_past_margins_are_carried_to_the_as_of_month_at_the_annual_rate() -> None:
    revenues = [rules.Revenue("x", _t(2024, 6), Decimal(1000)),
                rules.Revenue("x", _t(2025, 6), Decimal(1000)),
                rules.Revenue("x", _t(2026, 6), Decimal(1000)),
                rules.Revenue("x", _t(2026, 7), Decimal(5000))]  # after the as-of day
    # 500 × 1.12² + 500 × 1.12 + 500 = 627.20 + 560.00 + 500.00
    assert rules.historic_clv(revenues, date(2026, 6, 15), Decimal("0.5"),
                              Decimal("0.12")) == {"x": Decimal("1687.20")}
    with pytest.raises(ValueError, match="margin"):
        rules.historic_clv(revenues, date(2026, 6, 15), Decimal("1.5"), Decimal(0))


def test_a_loss_holds_until_a_purchase_or_a_move_back_to_current() -> None:
    acts = [rules.Activity("x", _t(2026, 1), rules.PURCHASE),
            rules.Activity("x", _t(2026, 1, 20), rules.STAGE, stage="lost"),
            rules.Activity("x", _t(2026, 2), rules.INTERACTION),  # a complaint: still lost
            rules.Activity("x", _t(2026, 3), rules.STAGE, stage="target"),
            rules.Activity("x", _t(2026, 4), rules.STAGE, stage="current")]
    assert rules.active_flags(acts, "2026-01", date(2026, 5, 1), 12) == [
        False, False, False, True, True]


def test_value_bands_must_rise_and_name_the_tiers_in_order() -> None:
    with pytest.raises(ValueError, match="rise"):
        rules.pyramid({"x": Decimal(1)}, (("key", Decimal("0.8")), ("major", Decimal("0.5"))))
    with pytest.raises(ValueError, match="tiers"):
        rules.pyramid({"x": Decimal(1)}, (("major", Decimal("0.5")),))
    assert rules.pyramid({"x": Decimal(0), "y": Decimal(5)}) == {"x": "small", "y": "key"}


def test_settings_refuse_falling_tier_bands() -> None:
    with pytest.raises(settings_mod.SettingsError, match="TOUCHSTREAM_VALUE"):
        settings_mod.load({"TOUCHSTREAM_VALUE_TIER_MAJOR_SHARE": "0.4"})


# -- the story, through the read model -----------------------------------------

@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, ReadStore,
                                                                       dict[str, str]]]:
    env = {"TOUCHSTREAM_DATA": str(tmp_path_factory.mktemp("value") / "data")}
    hub = make_hub(env)
    who = seed_value(hub)
    store = Dependencies(settings_mod.load(env)).read_store
    source = Dependencies(settings_mod.load(env), hub=hub).event_source()
    db = store.connect()
    try:
        Worker(db, source, [(registry.get("value"), None)], batch=7).catch_up()
        yield hub, store, who
    finally:
        db.close()
        source.close()
        hub.close()


def test_the_cohort_triangle_is_as_computed_by_hand(story: tuple[Hub, ReadStore,
                                                                 dict[str, str]]) -> None:
    _, store, who = story
    found = ValueView(store).cohorts(Cut(AS_OF), POLICY)
    assert {(c.cohort, c.period): (c.active, c.churned, c.returned, c.churn_rate,
                                   c.retention_rate, c.share) for c in found.cells} == TRIANGLE
    assert {c.cohort: c.size for c in found.cells} == SIZES
    letter = {v: k for k, v in who.items()}
    assert {letter[c] for c in found.members("2026-01", 2, "churned")} == set("bce")
    assert [letter[c] for c in found.members("2026-02", 3, "returned")] == ["g"]
    assert "i" not in {letter[c] for c in found.cohort_of}  # a cancelled order is no purchase


def test_outbound_touchpoints_keep_a_customer_only_when_configured(
        story: tuple[Hub, ReadStore, dict[str, str]]) -> None:
    _, store, _ = story
    cells = {(c.cohort, c.period): c.active
             for c in ValueView(store).cohorts(
                 Cut(AS_OF), replace(POLICY, count_outbound=True)).cells}
    assert (cells[("2026-03", 2)], cells[("2026-03", 3)]) == (1, 0)  # h emailed in April


def test_clv_and_tiers_are_as_computed_by_hand(story: tuple[Hub, ReadStore,
                                                            dict[str, str]]) -> None:
    _, store, who = story
    letter = {v: k for k, v in who.items()}
    view = ValueView(store)
    rows = {letter[r["customer_id"]]: r for r in view.clv(Cut(AS_OF), POLICY)}
    assert {n: r["revenue"] for n, r in rows.items()} == REVENUE
    assert {n: r["clv"] for n, r in rows.items()} == clv_at_zero_rate(Decimal("0.3"))
    assert (rows["a"]["orders"], rows["j"]["orders"], rows["g"]["first_purchase"]) == (
        6, 1, "2026-02-10")
    summary, tiers, _ = view.tiers(Cut(AS_OF), date(2020, 1, 1), POLICY)
    assert {letter[c]: t for c, t in tiers.items()} == TIERS
    assert {s.tier: (s.customers, format(s.revenue, "f"), s.share)
            for s in summary} == TIER_SUMMARY
    # the last three months only: a, g and j tie at 300 (all key), l 150 is ordinary
    _, recent, _ = view.tiers(Cut(AS_OF), date(2026, 4, 1), POLICY)
    assert {letter[c]: t for c, t in recent.items()} == {"a": "key", "g": "key", "j": "key",
                                                          "l": "ordinary"}


def test_as_of_a_past_day_equals_the_read_model_built_from_events_up_to_it(
        story: tuple[Hub, ReadStore, dict[str, str]], tmp_path: Path) -> None:
    hub, store, _ = story
    day = date(2026, 3, 31)
    cutoff = datetime(2026, 4, 1, tzinfo=UTC)
    source = Dependencies(settings_mod.load({"TOUCHSTREAM_DATA": str(tmp_path)}),
                          hub=hub).event_source()
    try:
        items = source.decode(source.read(0, 100_000))
    finally:
        source.close()
    early = ListSource([(p, e) for p, e in items if e.occurred_at < cutoff])
    assert 0 < len(early.items) < len(items)
    past = ReadStore(f"sqlite:///{tmp_path / 'past.db'}")
    db = past.connect()
    try:
        Worker(db, early, [(registry.get("value"), None)], batch=5).catch_up()  # type: ignore[arg-type]
    finally:
        db.close()
    live, rebuilt = ValueView(store), ValueView(past)
    rated = replace(POLICY, discount_rate=Decimal("0.1"))
    assert live.cohorts(Cut(day), POLICY).cells == rebuilt.cohorts(Cut(day), POLICY).cells
    assert live.clv(Cut(day), rated) == rebuilt.clv(Cut(day), rated)
    since = date(2026, 1, 1)
    assert live.tiers(Cut(day), since, POLICY) == rebuilt.tiers(Cut(day), since, POLICY)
    assert live.rfm(Cut(day), since, "EUR") == rebuilt.rfm(Cut(day), since, "EUR")
    # "as we knew it then": everything was recorded today, so a known-at of that day is empty
    assert live.cohorts(Cut(AS_OF, end_of(day)), POLICY).cells == []
