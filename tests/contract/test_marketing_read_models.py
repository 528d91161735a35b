"""The marketing read models (campaigns, segments, consent) over the real write model, on
SQLite and PostgreSQL alike: figures, drill-downs, erasure, and rebuild equal to live."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands import email_messages as em
from commands import marketing as cm
from commands import messages as m
from commands.hub import Hub
from projections import registry
from projections.campaigns.view import CampaignsView
from projections.consent.view import ConsentView
from projections.engine import Worker
from projections.segments.view import SegmentsView
from projections.store import ReadStore
from replays.rebuild import rebuild
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.demo_marketing import message_id

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
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


PHONES = {"ada": "+442079460011", "bob": "+442079460012", "cyril": "+442079460013",
          "dorothy": "+442079460014"}


def _register(hub: Hub, nick: str, stage: str = "prospect") -> UUID:
    cid = uuid4()
    hub.execute(m.RegisterCustomer(
        customer_id=cid, name=nick, lifecycle_stage=stage,  # type: ignore[arg-type]
        contact_points=[m.ContactPointIn(kind="email", value=f"{nick}@example.com"),  # type: ignore[list-item]
                        m.ContactPointIn(kind="phone", value=PHONES[nick])],  # type: ignore[list-item]
        occurred_at=T0 - 300 * DAY))
    return cid


def _scenario(hub: Hub) -> dict[str, Any]:
    ada, bob, cy, dot = (_register(hub, n) for n in ("ada", "bob", "cyril", "dorothy"))
    hub.execute(m.ChangeLifecycleStage(customer_id=dot, to_stage="current",
                                       occurred_at=T0 - 200 * DAY))
    for who in (ada, bob, cy):
        hub.execute(cm.GiveConsent(customer_id=who, consent_channel="email", purpose="marketing",
                                   evidence_kind="form-submission", evidence_id=f"s-{who}",
                                   occurred_at=T0 - 100 * DAY))
    hub.execute(cm.GiveConsent(customer_id=dot, consent_channel="email", purpose="marketing",
                               evidence_kind="call", evidence_id="call-7",
                               expires_at=T0 - 10 * DAY, occurred_at=T0 - 100 * DAY))
    segment = uuid4()
    hub.execute(cm.DefineSegment(segment_id=segment, name="Consenting prospects", rule={
        "all": [{"lifecycle": ["prospect"]}, {"consent": "email:marketing"}]},
        occurred_at=T0 - 20 * DAY))
    spring, webinar, hotline = uuid4(), uuid4(), uuid4()
    for cid, channel, code, number in ((spring, "email", "SPRING", None),
                                       (webinar, "web", "WEBINAR", None),
                                       (hotline, "phone", "HOTLINE", "+44 118 496 0500")):
        hub.execute(cm.DefineCampaign(
            campaign_id=cid, name=code.title(), channel=channel, budget=Decimal(600),  # type: ignore[arg-type]
            currency="EUR", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31),
            segment_id=segment if channel == "email" else None, code=code,
            tracked_number=number, attribution_window_days=14, occurred_at=T0 - 10 * DAY))
        hub.execute(cm.LaunchCampaign(campaign_id=cid, occurred_at=T0))
    hub.execute(cm.WithdrawConsent(customer_id=cy, consent_channel="email", purpose="marketing",
                                   occurred_at=T0, source_key="cy-withdraws"))
    mids = {}
    for who in (ada, bob, cy, dot):
        queue = cm.QueueCampaignEmail(customer_id=who, campaign_id=spring,
                                      from_address="news@shop.example", subject="Spring",
                                      body_text="Offers", unsubscribe_url="https://h/u",
                                      occurred_at=T0 + timedelta(hours=1))
        hub.execute(queue)
        mids[who] = message_id(queue, "news@shop.example")
        cleared = hub.execute(cm.ClearMarketingEmail(
            customer_id=who, campaign_id=spring, message_id=mids[who], purpose="marketing",
            occurred_at=T0 + timedelta(hours=2)))
        if not cleared.event_ids:
            hub.execute(em.RecordEmailSent(customer_id=who, message_id=mids[who], attempt=1,
                                           occurred_at=T0 + timedelta(hours=2)))
    hub.execute(em.RecordEmailBounce(customer_id=bob, original_message_id=mids[bob],
                                     recipient="bob@example.com", action="failed",
                                     status="5.1.1", report_message_id="<dsn@mx>",
                                     occurred_at=T0 + timedelta(hours=3)))
    # Ada replies in the thread, then fills in the webinar form: her touches are the
    # spring email (first) and the webinar response (last).
    reply = hub.execute(m.RecordEmail(
        message_id="<re-ada@example.com>", in_reply_to=mids[ada], references=[mids[ada]],
        from_address="ada@example.com", to=["news@shop.example"], subject="Re: Spring",
        body_text="Yes please", occurred_at=T0 + 2 * DAY))
    late = hub.execute(m.RecordEmail(  # outside the 14-day window: not a response
        message_id="<re2-ada@example.com>", in_reply_to=mids[ada], references=[mids[ada]],
        from_address="ada@example.com", to=["news@shop.example"], subject="Re: Spring",
        body_text="Still there?", occurred_at=T0 + 20 * DAY))
    form = hub.execute(m.RecordWebForm(
        form_name="contact", submission_id="web-1", email="ada@example.com",
        fields={"name": "Ada", "email": "ada@example.com", "campaign": "webinar"},
        occurred_at=T0 + 3 * DAY))
    call = hub.execute(m.LogCall(
        call_id="call-cy", direction="inbound", from_number=PHONES["cyril"],
        to_number="+441184960500", outcome="answered", occurred_at=T0 + 4 * DAY))
    hub.execute(cm.WithdrawConsent(customer_id=ada, consent_channel="email", purpose="marketing",
                                   reason="unsubscribe", campaign_id=spring,
                                   occurred_at=T0 + 5 * DAY))
    return {"ada": ada, "bob": bob, "cy": cy, "dot": dot, "segment": segment, "spring": spring,
            "webinar": webinar, "hotline": hotline, "reply": reply.event_ids[0],
            "late": late.event_ids[0], "form": form.event_ids[0], "call": call.event_ids[0]}


def test_campaign_figures_attribution_segments_and_consent_read_the_same_everywhere(
        world: tuple[Dependencies, Hub]) -> None:
    deps, hub = world
    ids = _scenario(hub)
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

    # Erasing Ada drops the response only her form fields linked; the rebuild agrees.
    deps.eraser.erase(ids["ada"], "ticket 9", "privacy")
    _catch_up(deps)
    assert campaigns.performance(str(ids["webinar"]))["responses"] == 0  # type: ignore[index]
    assert campaigns.performance(str(ids["spring"]))["responses"] == 1  # type: ignore[index]
    results = rebuild(deps.read_store, deps.event_source(), registry.select(MARKETING),
                      batch=5)
    assert all(r.comparison.equal and r.swapped for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def test_the_marketing_read_models_are_registered() -> None:
    assert set(MARKETING) <= set(registry.PROJECTIONS)
    assert isinstance(CampaignsView(ReadStore("sqlite:///:memory:")).projection,
                      registry.PROJECTIONS["campaigns"])
