"""A small marketing story through the real write model, with figures known by hand:
four customers, a segment, an email, a web and a phone campaign, consent given,
expiring, withdrawn, a suppression, a hard bounce, a reply in and one outside the
window, a form with the campaign's code, a call to the tracked number, an unsubscribe."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from commands import email_messages as em
from commands import marketing as cm
from commands import messages as m
from commands import sales as s
from commands.hub import Hub
from touchstream.demo_marketing import message_id

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


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


def seed_marketing(hub: Hub) -> dict[str, Any]:
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




def _order(who: UUID, number: str, total: str, currency: str, day: float) -> s.PlaceOrder:
    return s.PlaceOrder(customer_id=who, order_number=number, total=total, currency=currency,
                        lines=[{"product_code": "P", "quantity": "1", "unit_price": total}],
                        occurred_at=T0 + timedelta(days=day))


def seed_marketing_sales(hub: Hub, ids: dict[str, Any]) -> dict[str, str]:
    """Orders and opportunities after ``seed_marketing``'s touches (windows are 14 days).

    ada (spring email T0, spring reply day 2, webinar form day 3): order A1 1500.00 EUR on
    day 6 (first spring, last webinar); opportunity from spring named as its source.
    bob (spring email T0): B1 400.00 EUR day 7 with 100.00 refunded, B2 250.00 USD day 8
    (both spring); B3 on day 20 is outside every window.
    cy (hotline call day 4): C1 90.00 EUR day 5, C2 50.00 EUR day 5 cancelled, an
    opportunity without a source (last touch: hotline). dot (never reached): D1 on day 6.
    """
    ada, bob, cy, dot = (ids[n] for n in ("ada", "bob", "cy", "dot"))
    steps: dict[str, Any] = {
        "A1": _order(ada, "A1", "1500.00", "EUR", 6),
        "ada_opp": s.OpenOpportunity(customer_id=ada, title="Fleet", amount="9000",
                                     currency="EUR", expected_close="2026-06-30", owner="mia",
                                     source_campaign_id=str(ids["spring"]),
                                     occurred_at=T0 + 6 * DAY),
        "B1": _order(bob, "B1", "400.00", "EUR", 7),
        "B2": _order(bob, "B2", "250.00", "USD", 8),
        "B3": _order(bob, "B3", "70.00", "EUR", 20),
        "C1": _order(cy, "C1", "90.00", "EUR", 5),
        "C2": _order(cy, "C2", "50.00", "EUR", 5),
        "cy_opp": s.OpenOpportunity(customer_id=cy, title="Hotline lead", amount="500",
                                    currency="EUR", expected_close="2026-05-31", owner="jo",
                                    occurred_at=T0 + 5 * DAY),
        "D1": _order(dot, "D1", "80.00", "EUR", 6),
    }
    found = {name: str(hub.execute(cmd).event_ids[0]) for name, cmd in steps.items()}
    hub.execute(s.ReturnOrder(customer_id=bob, order_number="B1", amount="100.00",
                              occurred_at=T0 + 9 * DAY))
    hub.execute(s.CancelOrder(customer_id=cy, order_number="C2", occurred_at=T0 + 6 * DAY))
    return found
