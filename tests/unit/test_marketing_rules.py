"""Marketing rules, given/when/then on the customer's events: consent at send time, hard
bounces, attribution windows, the segment rule language; then the commands on a store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands import email_messages as em
from commands import marketing as cm
from commands import messages as m
from commands.records import RecordNotFoundError
from domain import marketing as mk
from domain.customer import Customer, Provenance
from tests.support.hubs import make_hub

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _prov(at: datetime = T0, n: int = 0) -> Provenance:
    return Provenance(event_id=uuid4(), occurred_at=at, channel="system", direction="internal",
                      actor="t", source_key=f"k{n}", correlation_id="c", causation_id="c")


def _customer() -> Customer:
    c = Customer.register(uuid4(), _prov(T0 - timedelta(days=400)), "Ada")
    c.collect_events()
    return c


def _new(c: Customer) -> list[type]:
    return [type(e) for e in c.collect_events()]


def test_a_campaign_email_without_consent_is_suppressed_at_send_time() -> None:
    c = _customer()
    assert mk.suppress_unless_consented(c, _prov(), "camp", "<m@x>", "marketing")
    [event] = c.collect_events()
    assert isinstance(event, mk.CampaignEmailSuppressed) and event.reason == "no consent"


def test_consent_given_then_withdrawn_decides_the_send_at_its_time() -> None:
    c = _customer()
    mk.give_consent(c, _prov(), "email", "marketing", "form-submission", "sub-1", None)
    assert not mk.suppress_unless_consented(c, _prov(T0 + timedelta(days=1)), "c", "<m>",
                                            "marketing")
    assert mk.suppress_unless_consented(c, _prov(), "c", "<m>", "newsletter")  # other purpose
    assert mk.withdraw_consent(c, _prov(), "email", "marketing", "unsubscribe", "c")
    assert not mk.withdraw_consent(c, _prov(), "email", "marketing", "unsubscribe", "c")
    _new(c)
    assert mk.suppress_unless_consented(c, _prov(), "c", "<m>", "marketing")
    [event] = c.collect_events()
    assert event.reason == "consent withdrawn"  # type: ignore[attr-defined]


def test_an_expired_consent_is_not_valid_and_expiry_is_recorded_once() -> None:
    c = _customer()
    ends = T0 + timedelta(days=30)
    mk.give_consent(c, _prov(), "email", "newsletter", "call", "call-9", ends)
    area = c.area(mk.AREA)
    assert mk.consent_valid(area, "email", "newsletter", ends - timedelta(seconds=1))
    assert not mk.consent_valid(area, "email", "newsletter", ends)
    provs = iter([_prov(ends, i) for i in range(3)])
    assert mk.expire_consents(c, provs, ends - timedelta(days=1)) == 0
    assert mk.expire_consents(c, provs, ends) == 1
    assert mk.expire_consents(c, provs, ends) == 0
    assert _new(c)[-1] is mk.ConsentExpired


def test_a_hard_bounce_withdraws_every_email_consent_and_a_soft_one_none() -> None:
    c = _customer()
    mk.give_consent(c, _prov(), "email", "marketing", "form-submission", "s", None)
    mk.give_consent(c, _prov(), "email", "newsletter", "form-submission", "s", None)
    mk.give_consent(c, _prov(), "phone", "marketing", "call", "call-1", None)
    _new(c)
    provs = iter([_prov(T0, i) for i in range(5)])
    assert mk.withdraw_on_hard_bounce(c, provs, "delayed", "4.4.1") == 0
    assert mk.withdraw_on_hard_bounce(c, provs, "failed", "5.1.1") == 2
    events = c.collect_events()
    assert {e.purpose for e in events} == {"marketing", "newsletter"}  # type: ignore[attr-defined]
    assert all(e.reason == "hard-bounce" for e in events)  # type: ignore[attr-defined]
    assert mk.consent_valid(c.area(mk.AREA), "phone", "marketing", T0)


def test_double_opt_in_gives_consent_once_and_refuses_an_unknown_request() -> None:
    c = _customer()
    mk.request_consent(c, _prov(), "req-1", "email", "newsletter", "form-submission", "sub-2")
    with pytest.raises(mk.ConsentRequestUnknownError):
        mk.confirm_consent(c, _prov(), "req-2", None)
    assert mk.confirm_consent(c, _prov(), "req-1", None)
    assert not mk.confirm_consent(c, _prov(), "req-1", None)
    given = [e for e in c.collect_events() if isinstance(e, mk.ConsentGiven)]
    assert [(g.evidence_kind, g.evidence_id) for g in given] == [("double-opt-in", "req-1")]


def test_unknown_consent_topics_and_evidence_are_refused() -> None:
    c = _customer()
    with pytest.raises(mk.InvalidConsentError):
        mk.give_consent(c, _prov(), "phone", "newsletter", "call", "x", None)
    with pytest.raises(mk.InvalidConsentError):
        mk.give_consent(c, _prov(), "email", "marketing", "rumour", "x", None)
    with pytest.raises(mk.InvalidConsentError):
        mk.give_consent(c, _prov(), "email", "marketing", "call", "x", T0 - timedelta(days=1))


def test_attribution_keeps_first_and_last_touch_within_each_campaigns_window() -> None:
    touches = [mk.Touch("a", T0), mk.Touch("b", T0 + timedelta(days=5)),
               mk.Touch("c", T0 + timedelta(days=9))]
    windows = {"a": timedelta(days=30), "b": timedelta(days=30), "c": timedelta(days=2)}
    at = T0 + timedelta(days=10)
    assert mk.first_and_last(touches, at, windows) == ("a", "c")
    assert mk.first_and_last(touches, T0 + timedelta(days=12), windows) == ("a", "b")
    assert mk.first_and_last(touches, T0 + timedelta(days=31), windows) == ("b", "b")
    assert mk.first_and_last(touches, T0 - timedelta(days=1), windows) == (None, None)
    assert mk.in_window(T0, T0 + timedelta(days=30), timedelta(days=30))
    assert not mk.in_window(T0, T0 + timedelta(days=30, seconds=1), timedelta(days=30))
    assert mk.in_period("2026-03-01", "2026-03-31", 7, datetime(2026, 4, 7, 23, tzinfo=UTC))
    assert not mk.in_period("2026-03-01", "2026-03-31", 7, datetime(2026, 4, 8, tzinfo=UTC))
    assert not mk.in_period("2026-03-01", "2026-03-31", 7, datetime(2026, 2, 28, tzinfo=UTC))


def _facts(**kw: Any) -> mk.CustomerFacts:
    return mk.CustomerFacts(**{"lifecycle_stage": "prospect", **kw})


def test_the_segment_rule_language_combines_its_conditions() -> None:
    rule = {"all": [{"lifecycle": ["prospect", "target"]}, {"consent": "email:marketing"},
                    {"any": [{"channel_activity": {"channel": "web", "min_touches": 2}},
                             {"last_contact_older_than_days": 90}]},
                    {"not": {"partner": "p-1"}}]}
    mk.check_rule(rule)
    given = {"email:marketing": None}
    recent = T0 - timedelta(days=10)
    assert mk.matches(rule, _facts(consents=given, last_contact=T0 - timedelta(days=91)), T0)
    assert mk.matches(rule, _facts(consents=given, last_contact=recent,
                                   touches={"web": 2}), T0)
    assert not mk.matches(rule, _facts(consents=given, last_contact=recent,
                                       touches={"web": 1}), T0)
    assert not mk.matches(rule, _facts(lifecycle_stage="current", consents=given), T0)
    assert not mk.matches(rule, _facts(consents=given, partner_id="p-1"), T0)
    assert not mk.matches(rule, _facts(), T0)  # no consent
    expiring = {"email:marketing": T0}
    assert not mk.matches({"consent": "email:marketing"}, _facts(consents=expiring), T0)
    assert mk.matches({"partner": None}, _facts(), T0)


def test_rfm_bounds_match_the_scores_of_the_day_and_never_a_customer_without_orders() -> None:
    rule = {"rfm": {"r_min": 4, "f_min": 3}}
    mk.check_rule(rule)
    assert mk.matches(rule, _facts(rfm=(4, 3, 1)), T0)
    assert mk.matches(rule, _facts(rfm=(5, 5, 5)), T0)
    assert not mk.matches(rule, _facts(rfm=(3, 5, 5)), T0)
    assert not mk.matches(rule, _facts(rfm=(4, 2, 5)), T0)
    assert not mk.matches(rule, _facts(), T0)  # no order by then: no scores
    assert mk.matches({"not": rule}, _facts(), T0)
    lapsed = {"rfm": {"r_max": 2, "m_min": 4, "m_max": 5}}  # big spenders gone quiet
    mk.check_rule(lapsed)
    assert mk.matches(lapsed, _facts(rfm=(2, 1, 4)), T0)
    assert not mk.matches(lapsed, _facts(rfm=(3, 1, 4)), T0)


@pytest.mark.parametrize("rule", [
    [], {}, {"lifecycle": ["gold"]}, {"all": []}, {"consent": "fax:marketing"},
    {"last_contact_older_than_days": -1}, {"last_contact_older_than_days": True},
    {"channel_activity": {"channel": "email", "min": 1}}, {"spend": 3},
    {"lifecycle": ["prospect"], "partner": None}, {"partner": 7},
    {"rfm": {}}, {"rfm": {"r_min": 6}}, {"rfm": {"r_min": 0}}, {"rfm": {"f_min": "3"}},
    {"rfm": {"m_min": True}}, {"rfm": {"recency": 4}}, {"rfm": 4},
])
def test_a_malformed_rule_is_refused_with_a_reason(rule: Any) -> None:
    with pytest.raises(mk.InvalidSegmentRuleError):
        mk.check_rule(rule)


# -- the commands on a store ----------------------------------------------------------------
def _campaign(hub: Any, **kw: Any) -> UUID:
    cid = uuid4()
    hub.execute(cm.DefineCampaign(**{
        "campaign_id": cid, "name": "Spring", "channel": "email", "budget": Decimal(500),
        "currency": "EUR", "starts_on": date(2026, 3, 1), "ends_on": date(2026, 3, 31),
        "code": "SPRING26", **kw}))
    return cid


def test_campaign_sends_are_idempotent_and_suppressed_without_consent(
        sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    ada, bob = uuid4(), uuid4()
    for cid, addr in ((ada, "ada@example.com"), (bob, "bob@example.com")):
        hub.register_customer(m.RegisterCustomer(
            customer_id=cid, name=addr, contact_points=[
                m.ContactPointIn(kind="email", value=addr)]))  # type: ignore[list-item]
    hub.execute(cm.GiveConsent(customer_id=ada, consent_channel="email", purpose="marketing",
                               evidence_kind="form-submission", evidence_id="sub-1"))
    campaign = _campaign(hub)
    send = {"campaign_id": campaign, "from_address": "news@shop.example", "subject": "Hi",
            "body_text": "Spring sale", "unsubscribe_url": "https://hub.example/u/x"}
    with pytest.raises(mk.CampaignStateError):  # defined, not launched
        hub.execute(cm.QueueCampaignEmail(customer_id=ada, **send))
    hub.execute(cm.LaunchCampaign(campaign_id=campaign))
    assert hub.execute(cm.LaunchCampaign(campaign_id=campaign)).duplicate
    first = hub.execute(cm.QueueCampaignEmail(customer_id=ada, **send))
    again = hub.execute(cm.QueueCampaignEmail(customer_id=ada, **send))
    assert len(first.event_ids) == 2 and again.duplicate
    hub.execute(cm.QueueCampaignEmail(customer_id=bob, **send))

    def message(cid: UUID) -> str:
        return str(hub.customer(cid).area(mk.AREA)["campaigns"][str(campaign)])

    def clear(cid: UUID) -> Any:
        return hub.execute(cm.ClearMarketingEmail(customer_id=cid, campaign_id=campaign,
                                                  message_id=message(cid), purpose="marketing"))

    assert clear(ada).event_ids == []  # consented: may go, nothing recorded
    assert len(clear(bob).event_ids) == 1 and clear(bob).duplicate
    # A hard bounce of Ada's address withdraws her consent on the write side.
    hub.execute(em.RecordEmailBounce(customer_id=ada, original_message_id=message(ada),
                                     recipient="ada@example.com", action="failed",
                                     status="5.1.1", report_message_id="<dsn-1@mx>"))
    assert not mk.consent_valid(hub.customer(ada).area(mk.AREA), "email", "marketing",
                                datetime.now(UTC))
    assert len(clear(ada).event_ids) == 1
    hub.execute(cm.CloseCampaign(campaign_id=campaign))
    with pytest.raises(mk.CampaignStateError):
        hub.execute(cm.CloseCampaign(campaign_id=campaign, source_key="close-again"))
    with pytest.raises(RecordNotFoundError):
        hub.execute(cm.LaunchCampaign(campaign_id=uuid4()))


def test_segments_are_checked_and_redefined(sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    sid = uuid4()
    with pytest.raises(mk.InvalidSegmentRuleError):
        hub.execute(cm.DefineSegment(segment_id=sid, name="x", rule={"spend": 1}))
    hub.execute(cm.DefineSegment(segment_id=sid, name="Lapsed", rule={"lifecycle": ["lost"]}))
    hub.execute(cm.DefineSegment(segment_id=sid, name="Lapsed",
                                 rule={"lifecycle": ["lost", "target"]}, source_key="v2"))
    from commands.records import load
    segment = load(hub.context, "segment", sid)
    assert segment.rule == {"lifecycle": ["lost", "target"]} and segment.version == 1


def test_a_campaign_sends_only_between_its_launch_and_its_close() -> None:
    fields = {"event_id": uuid4(), "occurred_at": T0, "actor": "t", "key_digest": "d"}
    campaign = mk.Campaign._create(
        mk.Campaign.Defined, id=uuid4(), name="Spring", channel="email", purpose="marketing",
        budget="1.00", currency="EUR", starts_on="2026-03-01", ends_on="2026-03-31",
        segment_id=None, code="SPRING", tracked_number=None, attribution_window_days=7,
        **fields)
    with pytest.raises(mk.CampaignStateError):
        campaign.check_sendable(T0)
    campaign.launch({**fields, "occurred_at": T0 + timedelta(days=1)})
    campaign.close({**fields, "occurred_at": T0 + timedelta(days=10)})
    campaign.check_sendable(T0 + timedelta(days=5))  # recorded late, sent while it ran
    for at in (T0, T0 + timedelta(days=10)):
        with pytest.raises(mk.CampaignStateError):
            campaign.check_sendable(at)
