"""The marketing read models (campaigns, segments, consent) over the real write model, on
SQLite and PostgreSQL alike: figures, drill-downs, erasure, and rebuild equal to live."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from commands.hub import Hub
from projections import registry
from projections.campaigns.view import CampaignsView
from projections.consent.view import ConsentView
from projections.engine import Worker
from projections.segments.view import SegmentsView
from projections.store import ReadStore
from replays.rebuild import rebuild
from tests.support.hubs import make_hub
from tests.support.marketing import T0, seed_marketing, seed_marketing_sales
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

DAY = timedelta(days=1)
MARKETING = ["campaigns", "segments", "consent"]


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest) -> Iterator[tuple[Dependencies, Hub]]:
    env = dict(request.getfixturevalue(f"{request.param}_env"))
    hub = make_hub(env)
    yield Dependencies(settings_mod.load(env), hub=hub), hub
    hub.close()


def _catch_up(deps: Dependencies) -> None:
    db = deps.read_store.connect()
    try:
        Worker(db, deps.event_source(), [(p, None) for p in registry.select(MARKETING)],
               batch=7).catch_up()
    finally:
        db.close()


def test_campaign_figures_attribution_segments_and_consent_read_the_same_everywhere(
        world: tuple[Dependencies, Hub]) -> None:
    deps, hub = world
    ids = seed_marketing(hub)
    _catch_up(deps)
    campaigns = CampaignsView(deps.read_store)
    spring = campaigns.performance(str(ids["spring"]))
    assert spring is not None
    assert {k: spring[k] for k in ("queued", "sent", "delivered", "bounced", "suppressed",
                                   "unsubscribed", "responses")} == {
        "queued": 4, "sent": 2, "delivered": 1, "bounced": 1, "suppressed": 2,
        "unsubscribed": 1, "responses": 1}
    assert spring["responses_by_channel"] == {"email": 1}
    assert spring["cost_per_response"] == "600.00" and spring["first_touch_responses"] == 2
    assert [e["event_id"] for e in campaigns.events(str(ids["spring"]), "response")] == [
        ids["reply"]]
    assert len(campaigns.events(str(ids["spring"]), "delivered")) == 1
    webinar = campaigns.performance(str(ids["webinar"]))
    hotline = campaigns.performance(str(ids["hotline"]))
    assert webinar["responses_by_channel"] == {"web": 1}  # type: ignore[index]
    assert hotline["responses_by_channel"] == {"phone": 1}  # type: ignore[index]
    [reply, form] = [a for a in campaigns.attributions(str(ids["ada"]))]
    assert (reply["campaign_id"], reply["first_touch_campaign_id"],
            reply["last_touch_campaign_id"]) == (str(ids["spring"]),) * 3
    assert (form["event_id"], form["first_touch_campaign_id"],
            form["last_touch_campaign_id"]) == (ids["form"], str(ids["spring"]),
                                                str(ids["webinar"]))

    segments = SegmentsView(deps.read_store)
    (segment,) = segments.segments()
    members = segments.members(segment["rule"], T0 + 10 * DAY)
    assert members == []  # ada unsubscribed, bob bounced, cy withdrew, dot is current
    # Facts are today's; the day only moves expiries and "last contact older than".
    consenting = {"consent": "email:marketing"}
    assert segments.members(consenting, T0 - 50 * DAY) == [str(ids["dot"])]
    assert segments.members(consenting, T0) == []  # dot's consent ran out
    assert segments.members({"lifecycle": ["prospect"]}, T0) == sorted(
        str(ids[n]) for n in ("ada", "bob", "cy"))
    assert segments.members({"last_contact_older_than_days": 10}, T0 + 31 * DAY) == sorted(
        str(ids[n]) for n in ("ada", "bob", "cy", "dot"))
    assert segments.members({"last_contact_older_than_days": 10}, T0 + 15 * DAY) == sorted(
        str(ids[n]) for n in ("bob", "cy", "dot"))  # ada wrote again on day 20

    consent = ConsentView(deps.read_store)
    [dot] = consent.of_customer(str(ids["dot"]), T0)
    assert dot["state"] == "given" and not dot["valid"] and dot["evidence_id"] == "call-7"
    [bob] = consent.of_customer(str(ids["bob"]), T0)
    assert bob["state"] == "withdrawn"
    assert [c["detail"] for c in consent.changes(str(ids["bob"]))] == [
        "form-submission", "hard-bounce"]
    assert consent.totals(T0) == [{"consent_channel": "email", "purpose": "marketing",
                                   "valid": 0, "lapsed": 1, "withdrawn": 3, "expired": 0}]

    # Sales: orders credited to their last touch, opportunities to their source campaign
    # (else their last touch); refunds subtracted, cancelled orders and orders outside every
    # window left out; ROI only where the revenue is in the budget's currency.
    sold = seed_marketing_sales(hub, ids)
    _catch_up(deps)
    assert _sales(campaigns, ids["spring"]) == (1, 2, {"EUR": "300.00", "USD": "250.00"}, None)
    assert campaigns.performance(str(ids["spring"]))["roi_note"] == (  # type: ignore[index]
        "revenue in USD, budget in EUR: no exchange rates")
    assert _sales(campaigns, ids["webinar"]) == (0, 1, {"EUR": "1500.00"}, "1.5000")
    assert _sales(campaigns, ids["hotline"]) == (1, 1, {"EUR": "90.00"}, "-0.8500")
    assert [e["event_id"] for e in campaigns.events(str(ids["spring"]), "order")] == sorted(
        [sold["B1"], sold["B2"]])
    assert [e["event_id"] for e in campaigns.events(str(ids["spring"]), "opportunity")] == [
        sold["ada_opp"]]
    assert [e["event_id"] for e in campaigns.events(str(ids["hotline"]), "opportunity")] == [
        sold["cy_opp"]]
    # The first-touch model credits A1 to spring, where Ada's touches began, not webinar.
    assert _first(campaigns, ids["spring"]) == (1, 3, {"EUR": "1800.00", "USD": "250.00"},
                                                None)
    assert _first(campaigns, ids["webinar"]) == (0, 0, {}, "-1.0000")
    assert [e["event_id"] for e in campaigns.events(str(ids["spring"]), "first_touch_order")
            ] == sorted([sold["A1"], sold["B1"], sold["B2"]])
    order = {a["event_id"]: a for a in campaigns.attributions(str(ids["ada"]))}[sold["A1"]]
    assert (order["kind"], order["first_touch_campaign_id"], order["last_touch_campaign_id"]
            ) == ("order", str(ids["spring"]), str(ids["webinar"]))
    # RFM segments (EUR, 365 days, by hand): as of day 30 ada (r2 f1 m4), bob (r4 f4 m3:
    # 400 − 100 refunded + 70), cy (r1 f1 m2: C2 cancelled), dot (r2 f1 m1); B2 is USD.
    segments_sold = SegmentsView(deps.read_store)
    assert segments_sold.members({"rfm": {"r_min": 4, "f_min": 3}}, T0 + 30 * DAY) == [
        str(ids["bob"])]
    assert segments_sold.members({"rfm": {"m_min": 3}}, T0 + 30 * DAY) == sorted(
        [str(ids["ada"]), str(ids["bob"])])
    # As of an earlier day only what had happened counts: C2 was not yet cancelled, the
    # others had not ordered (no scores: no bound matches them).
    assert segments_sold.members({"rfm": {"f_min": 1}}, T0 + 5.5 * DAY) == [str(ids["cy"])]
    assert segments_sold.members({"not": {"rfm": {"r_min": 1}}}, T0 + 5.5 * DAY) == sorted(
        str(ids[n]) for n in ("ada", "bob", "dot"))
    # Orders and opportunities are attributions but not responses.
    assert campaigns.performance(str(ids["spring"]))["first_touch_responses"] == 2  # type: ignore[index]

    # Erasing Ada drops the response only her form fields linked; the rebuild agrees.
    deps.eraser.erase(ids["ada"], "ticket 9", "privacy")
    _catch_up(deps)
    assert campaigns.performance(str(ids["webinar"]))["responses"] == 0  # type: ignore[index]
    assert campaigns.performance(str(ids["spring"]))["responses"] == 1  # type: ignore[index]
    # Her order's last touch is now the spring reply: the revenue moves with it.
    assert _sales(campaigns, ids["spring"])[2] == {"EUR": "1800.00", "USD": "250.00"}
    assert _sales(campaigns, ids["webinar"]) == (0, 0, {}, "-1.0000")
    results = rebuild(deps.read_store, deps.event_source(), registry.select(MARKETING),
                      batch=5)
    assert all(r.comparison.equal and r.swapped for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def _sales(view: CampaignsView, campaign: object) -> tuple[Any, ...]:
    found = view.performance(str(campaign))
    assert found is not None
    return (found["opportunities_attributed"], found["orders_attributed"],
            found["revenue_attributed"], found["roi"])


def _first(view: CampaignsView, campaign: object) -> tuple[Any, ...]:
    found = view.performance(str(campaign))
    assert found is not None
    return (found["first_touch_opportunities"], found["first_touch_orders"],
            found["first_touch_revenue"], found["first_touch_roi"])


def test_the_marketing_read_models_are_registered() -> None:
    assert set(MARKETING) <= set(registry.PROJECTIONS)
    assert isinstance(CampaignsView(ReadStore("sqlite:///:memory:")).projection,
                      registry.PROJECTIONS["campaigns"])


def test_a_campaigns_generation_built_before_its_customer_index_gets_it_at_its_next_batch(
        world: tuple[Dependencies, Hub]) -> None:
    """The batch's lookup of mailed customers reads the message table by customer: a live
    generation made before that index existed gets it, not a table scan per batch."""
    from commands import messages as m
    from projections.campaigns import projection as campaigns

    deps, hub = world
    ids = seed_marketing(hub)
    _catch_up(deps)
    db = deps.read_store.connect()
    try:
        (gen,) = [int(r[0]) for r in db.all(
            "SELECT generation FROM ts_projection WHERE name='campaigns' AND live=1")]
        index = f"campaigns_g{gen}_message_customer"
        listed = ("SELECT name FROM sqlite_master WHERE type='index' AND name=?"
                  if db.dialect == "sqlite" else
                  "SELECT indexname FROM pg_indexes WHERE indexname=?")
        assert db.all(listed, (index,)) != []
        db.execute(f"DROP INDEX {index}")
        campaigns._INDEXED.clear()  # a process started on the old generation
        hub.execute(m.RecordEmail(customer_id=ids["dot"], message_id="<late-reply@x>",
                                  from_address="dot@example.com", direction="inbound",
                                  occurred_at=T0 + 30 * DAY))
        _catch_up(deps)
        assert db.all(listed, (index,)) != []
    finally:
        db.close()
