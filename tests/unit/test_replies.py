"""Replies: RFC 3834 loop prevention (pure, one test per rule), templates as versioned
records rendered in a sandbox, templated staff replies, automatic acknowledgements once per
triggering event, material by email and fax, and territory moves — on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from channels.email.outbound import build_message
from commands import email_messages as em
from commands import messages as m
from commands import replies as rc
from commands import sales as sc_sales
from commands import service as sc
from commands import territories as tc
from commands.hub import Hub
from commands.rendering import TemplateRenderError
from domain import replies as r
from domain import sales
from domain import territories as tr
from domain.customer import Customer, outbound_email_fields
from domain.work import TerritoryDef, WorkPolicy
from projections.outbox.view import OutboxEntry

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
WEEK = timedelta(days=4)


def refusal(headers: dict[str, str] | None = None, sender: str | None = "ada@example.com",
            **kw: Any) -> str | None:
    return r.auto_reply_refusal(headers or {}, sender=sender,
                                bounced=kw.get("bounced", False),
                                last_replied_at=kw.get("last"), now=NOW, window=WEEK)


# -- RFC 3834 loop rules (pure) ------------------------------------------------------------
def test_an_ordinary_message_is_answered() -> None:
    assert refusal({"Auto-Submitted": "no", "Precedence": "first-class"}) is None


def test_auto_submitted_anything_but_no_is_not_answered() -> None:
    for value in ("auto-replied", "auto-generated", "Auto-Notified; owner-email=x@y", "yes"):
        assert refusal({"auto-submitted": value}) == "auto-submitted"
    assert refusal({"Auto-Submitted": " No "}) is None


def test_bulk_junk_and_list_precedence_are_not_answered() -> None:
    for value in ("bulk", "junk", "LIST"):
        assert refusal({"Precedence": value}) == f"precedence-{value.lower()}"


def test_a_mailing_list_message_is_not_answered() -> None:
    assert refusal({"List-Id": "<news.example.com>"}) == "mailing-list"


def test_an_address_that_bounced_is_not_answered() -> None:
    assert refusal(bounced=True) == "bounced"


def test_one_auto_reply_per_address_per_window() -> None:
    assert refusal(last=NOW - timedelta(days=1)) == "recently-auto-replied"
    assert refusal(last=NOW - timedelta(days=5)) is None


def test_daemons_null_return_paths_and_noreply_senders_are_not_answered() -> None:
    assert refusal(sender="MAILER-DAEMON@mx.example.com") == "no-reply-sender"
    assert refusal(sender="noreply@shop.example") == "no-reply-sender"
    assert refusal(sender="list-request@example.com") == "no-reply-sender"
    assert refusal({"Return-Path": "<>"}) == "no-reply-sender"
    assert refusal(sender=None) == "no-sender"


def test_our_auto_reply_says_auto_replied_and_carries_html_and_attachments() -> None:
    entry = OutboxEntry(
        message_id="<a@x>", customer_id="c", envelope_id="e", queued_at=NOW,
        from_address="support@example.org", to=["ada@example.com"], cc=[], subject="Re: hi",
        body_text="Thanks", in_reply_to="<m1@x>", references=["<m1@x>"], status="queued",
        attempts=0, last_attempt_at=None, body_html="<p>Thanks</p>",
        auto_submitted="auto-replied",
        attachments=[{"address": "ab" * 32, "name": "prices.pdf",
                      "content_type": "application/pdf"}])
    raw = build_message(entry, _Blobs({"ab" * 32: b"%PDF-1.4"}))
    assert b"Auto-Submitted: auto-replied" in raw and b"In-Reply-To: <m1@x>" in raw
    assert b"text/html" in raw and b'filename="prices.pdf"' in raw


class _Blobs:
    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = data

    def get(self, address: str) -> bytes:
        return self.data[address]


# -- the write model ------------------------------------------------------------------
TERRITORIES = (TerritoryDef("berlin", ("DE-10", "DE-12"), "sam"),
               TerritoryDef("austria", ("AT",), "kim"))


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: NOW,
            max_future_skew=timedelta(minutes=5))
    h.context = replace(h.context, policies={"work": WorkPolicy(territories=TERRITORIES)})
    yield h
    h.close()


def customer(hub: Hub, name: str = "Ada <b>L</b>", language: str | None = "de-AT") -> UUID:
    cid = UUID(hub.execute(m.RegisterCustomer(
        name=name, contact_points=[m.ContactPointIn(kind="email", value="ada@example.com"),
                                   m.ContactPointIn(kind="fax", value="+44 20 7946 0999")],
        source_key=f"reg:{uuid4()}")).customer_id)
    if language:
        hub.execute(m.ChangeProfile(customer_id=cid, changes={"language": language}))
    return cid


def save(hub: Hub, language: str, body: str, **kw: Any) -> Any:
    return hub.execute(rc.SaveTemplate(name="auto-ack", language=language,
                                       subject="Re: {{ subject }} [{{ case.reference }}]",
                                       body_text=body, **kw))


def test_a_template_is_versioned_per_language_with_fallback(hub: Hub) -> None:
    save(hub, "en", "Dear {{ customer.name }}, we got it.")
    save(hub, "en", "Dear {{ customer.name }}, we got it.")  # identical: no new version
    save(hub, "de", "Hallo {{ customer.name }}, angekommen.",
         body_html="<p>Hallo {{ customer.name }}</p>")
    save(hub, "en", "Dear {{ customer.name }}, thank you.")
    found = rc.template(hub, "auto-ack")
    assert (found.latest, [v["version"] for v in found.versions["en"]]) == (3, [1, 3])
    cid = customer(hub)
    shown = rc.preview(hub, "auto-ack", cid, variables={"subject": "Boiler\nBcc: x@y"},
                       case_id="5d1f0c8e-3a4b")
    # de-AT falls back to de; the HTML body is escaped, the subject stays one line
    assert (shown["language"], shown["version"]) == ("de", 2)
    assert shown["subject"] == "Re: Boiler Bcc: x@y [5D1F0C8E]"
    assert shown["body_text"] == "Hallo Ada <b>L</b>, angekommen."
    assert shown["body_html"] == "<p>Hallo Ada &lt;b&gt;L&lt;/b&gt;</p>"
    assert rc.preview(hub, "auto-ack", cid, variables={"subject": "x"},
                      language="fr")["language"] == "en"  # the fallback language


def test_a_template_that_does_not_render_or_escapes_the_sandbox_is_refused(hub: Hub) -> None:
    cid = customer(hub)
    save(hub, "de", "{{ missing_variable }}")
    with pytest.raises(TemplateRenderError, match="missing_variable"):
        rc.preview(hub, "auto-ack", cid, variables={"subject": "x"})
    save(hub, "de", "{{ customer.__class__.__mro__ }}")
    with pytest.raises(TemplateRenderError):
        rc.preview(hub, "auto-ack", cid, variables={"subject": "x"})
    save(hub, "de", "{% set _ = vars.update(a='b') %}{{ vars }}")
    with pytest.raises(TemplateRenderError, match="sandbox"):
        rc.preview(hub, "auto-ack", cid, variables={"subject": "x"})


def test_a_staff_reply_with_a_template_is_queued_and_marked_once(hub: Hub) -> None:
    save(hub, "de", "Hallo {{ customer.name }}, {{ note }}")
    cid = customer(hub)
    cmd = em.SendEmail(customer_id=cid, from_address="support@example.org",
                       to=["ada@example.com"], template_id=r.template_id("auto-ack"),
                       variables={"subject": "Boiler", "note": "the part ships Monday."},
                       in_reply_to="<m1@example.com>", references=["<m1@example.com>"],
                       source_key="reply-1")
    first, again = hub.execute(cmd), hub.execute(cmd)
    assert again.duplicate and again.event_ids == first.event_ids
    queued, marked = [e for e in hub.stream(cid)
                      if isinstance(e, (Customer.EmailQueued, r.TemplateRendered))]
    assert queued.body_text == "Hallo Ada <b>L</b>, the part ships Monday."
    assert queued.references == ["<m1@example.com>"] and queued.in_reply_to == "<m1@example.com>"
    assert (marked.message_id, marked.template_version, marked.purpose) == (
        queued.message_id, 1, "staff-reply")
    with pytest.raises(ValueError, match="body_text"):
        em.SendEmail(customer_id=cid, from_address="a@b.c", to=["a@b.c"], source_key="k")


def _case(hub: Hub, cid: UUID) -> tuple[UUID, str]:
    case = uuid4()
    hub.execute(sc.OpenCase(customer_id=cid, case_id=case, category="repair", subject="x",
                            channel="email"))
    opened = [e for e in hub.stream(cid) if type(e).__name__ == "CaseOpened"][-1]
    return case, str(opened.event_id)


def ack(cid: UUID, case: UUID, trigger: str, **kw: Any) -> rc.AcknowledgeCase:
    return rc.AcknowledgeCase(customer_id=cid, case_id=case, trigger_event_id=UUID(trigger),
                              from_address="support@example.org", to="ada@example.com",
                              in_reply_to="<m1@example.com>", references=["<m1@example.com>"],
                              variables={"subject": "Boiler"}, **kw)


def test_an_acknowledgement_is_sent_once_per_trigger_and_once_per_window(hub: Hub) -> None:
    save(hub, "de", "Danke {{ customer.name }}, Fall {{ case.reference }}.")
    cid = customer(hub)
    case, trigger = _case(hub, cid)
    first = hub.execute(ack(cid, case, trigger, headers={"Auto-Submitted": "no"}))
    retry = hub.execute(ack(cid, case, trigger))
    assert retry.duplicate
    queued = [e for e in hub.stream(cid) if isinstance(e, Customer.EmailQueued)]
    assert len(queued) == 1 and len(first.event_ids) == 3
    # the Message-ID derives from the triggering event: the same in another hub
    assert queued[0].message_id == outbound_email_fields(
        f"acknowledge-case:{trigger}", {"from_address": "support@example.org"})["message_id"]
    second_case, second_trigger = _case(hub, cid)
    hub.execute(ack(cid, second_case, second_trigger))  # the read model did not know yet
    withheld = [e for e in hub.stream(cid) if isinstance(e, r.AutoReplyWithheld)]
    assert [w.reason for w in withheld] == ["recently-auto-replied"]


def test_an_auto_submitted_message_gets_no_acknowledgement_and_it_is_recorded(hub: Hub) -> None:
    cid = customer(hub)
    case, trigger = _case(hub, cid)
    hub.execute(ack(cid, case, trigger, headers={"Auto-Submitted": "auto-replied"}))
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in hub.stream(cid)
            if isinstance(e, (r.AutoReplyWithheld, Customer.EmailQueued))] == [
        ("AutoReplyWithheld", "auto-submitted")]


def test_a_template_that_fails_to_render_withholds_the_acknowledgement_once(hub: Hub) -> None:
    save(hub, "de", "Danke {{ nobody_gave_this }}.")
    cid = customer(hub)
    case, trigger = _case(hub, cid)
    hub.execute(ack(cid, case, trigger))
    assert hub.execute(ack(cid, case, trigger)).duplicate  # the next pass sends nothing
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in hub.stream(cid)
            if isinstance(e, (r.AutoReplyWithheld, Customer.EmailQueued))] == [
        ("AutoReplyWithheld", "template-error")]


def test_material_goes_by_email_as_an_attachment_or_is_queued_for_fax(hub: Hub) -> None:
    cid = customer(hub)
    doc = "cd" * 32
    hub.execute(rc.SendMaterial(customer_id=cid, material_id=doc, name="prices.pdf", size=8,
                                from_address="sales@example.org", send_id=uuid4()))
    hub.execute(rc.SendMaterial(customer_id=cid, material_id=doc, name="prices.pdf", size=8,
                                send_channel="fax", send_id=uuid4(), rule="price-request"))
    sent = [e for e in hub.stream(cid) if isinstance(e, r.MaterialSent)]
    assert [(e.send_channel, e.message_id is not None, e.fax_id is not None) for e in sent] == [
        ("email", True, False), ("fax", False, True)]
    fax = next(e for e in hub.stream(cid) if isinstance(e, Customer.FaxRecorded))
    assert (fax.status, fax.document_sha256, fax.direction) == ("queued", doc, "outbound")


def test_reassigning_a_territory_moves_its_open_opportunities_once(hub: Hub) -> None:
    cid = customer(hub)
    opp = uuid4()
    hub.execute(sc_sales.OpenOpportunity(customer_id=cid, opportunity_id=opp, title="Boilers",
                                         amount="1200.00", currency="EUR",
                                         expected_close=date(2027, 1, 31), owner="sam"))
    done = hub.execute(tc.ReassignTerritory(territory="Berlin", to_owner="lee",
                                            source_key="move-1"))
    assert hub.execute(tc.ReassignTerritory(territory="berlin", to_owner="lee",
                                            source_key="move-1")).duplicate
    move_id = UUID(done.event_ids[-1])
    move = tc.MoveTerritoryOpportunity(customer_id=cid, opportunity_id=opp, territory="berlin",
                                       move_id=move_id, to_owner="lee")
    hub.execute(move)
    hub.execute(move)
    moved = [e for e in hub.stream(cid) if isinstance(
        e, (tr.OpportunityTerritoryMoved, sales.OpportunityChanged))]
    assert [(type(e).__name__, getattr(e, "owner", None)) for e in moved] == [
        ("OpportunityTerritoryMoved", None), ("OpportunityChanged", "lee")]
    assert (moved[0].from_owner, moved[0].territory, moved[0].move_id) == (
        "sam", "berlin", str(move_id))
    with pytest.raises(tr.TerritoryUnknownError):
        hub.execute(tc.ReassignTerritory(territory="mars", to_owner="lee"))


def test_a_campaign_email_is_rendered_from_a_template_in_each_members_language(
        hub: Hub) -> None:
    from commands import marketing as cm

    hub.execute(rc.SaveTemplate(name="spring-offer", language="en", subject="Spring: {{ offer }}",
                                body_text="Dear {{ customer.name }}, {{ offer }}.",
                                body_html="<p>Dear {{ customer.name }}</p>"))
    hub.execute(rc.SaveTemplate(name="spring-offer", language="de",
                                subject="Frühling: {{ offer }}",
                                body_text="Hallo {{ customer.name }}, {{ offer }}."))
    campaign = uuid4()
    hub.execute(cm.DefineCampaign(campaign_id=campaign, name="Spring", channel="email",
                                  budget=Decimal(500), currency="EUR", code="SPRING26",
                                  starts_on=NOW.date(), ends_on=NOW.date() + timedelta(days=9)))
    hub.execute(cm.LaunchCampaign(campaign_id=campaign))
    ada = customer(hub)
    bob = UUID(hub.execute(m.RegisterCustomer(
        name="Bob", contact_points=[m.ContactPointIn(kind="email", value="bob@example.com")],
        source_key="reg:bob")).customer_id)
    send = {"campaign_id": campaign, "from_address": "news@shop.example",
            "unsubscribe_url": "https://hub.example/u?a=1&b=2",
            "template_id": r.template_id("spring-offer"), "variables": {"offer": "20% off"}}
    for cid in (ada, bob):
        first = hub.execute(cm.QueueCampaignEmail(customer_id=cid, **send))
        assert hub.execute(cm.QueueCampaignEmail(customer_id=cid, **send)).duplicate
        assert len(first.event_ids) == 3  # the email, the campaign's mark, the template's
    (de_mail, de_mark), (en_mail, en_mark) = (
        [e for e in hub.stream(c) if isinstance(e, (Customer.EmailQueued, r.TemplateRendered))]
        for c in (ada, bob))
    # de-AT gets the German version, the other the fallback; the unsubscribe link below both
    assert de_mail.subject == "Frühling: 20% off" and en_mail.subject == "Spring: 20% off"
    assert de_mail.body_text == ("Hallo Ada <b>L</b>, 20% off.\n\n--\n"
                                 "Unsubscribe: https://hub.example/u?a=1&b=2\n")
    assert (de_mark.purpose, de_mark.language, de_mark.body_html) == ("campaign", "de", None)
    assert en_mark.message_id == en_mail.message_id and en_mark.body_html == (
        '<p>Dear Bob</p><p>Unsubscribe: <a href="https://hub.example/u?a=1&amp;b=2">'
        "https://hub.example/u?a=1&amp;b=2</a></p>")
    with pytest.raises(ValueError, match="template_id"):
        cm.QueueCampaignEmail(customer_id=ada, campaign_id=campaign, from_address="a@b.c",
                              unsubscribe_url="https://hub.example/u")
