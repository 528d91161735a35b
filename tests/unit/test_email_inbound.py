"""Routing raw messages to touchpoints: direction, threads, fax by email, bounces, quarantine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from channels.blobs import BlobStore
from channels.email.config import InboundRules
from channels.email.inbound import Fetched, InboundMail, Origin
from commands import email_messages as em
from commands import messages as m
from commands.hub import Hub
from tests.support.hubs import make_hub
from tests.support.mail import all_events, message, multipart, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import BulkSink, HubOutbox

ORIGIN = Origin("support@shop.example", "INBOX", 1, 1)
RULES = InboundRules(staff_domains=frozenset({"shop.example"}),
                     fax_gateways=frozenset({"fax.example"}), max_bytes=100_000)


@pytest.fixture
def hub(sqlite_env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(sqlite_env)
    yield h
    h.close()


@pytest.fixture(params=["one-by-one", "bulk"])
def mail(hub: Hub, tmp_path: Path, request: pytest.FixtureRequest) -> InboundMail:
    """The same routing through the per-command path and the bulk write path."""
    bulk = BulkSink(hub) if request.param == "bulk" else None
    return InboundMail(hub, BlobStore(tmp_path / "blobs"), RULES, batch_sink=bulk)


def test_mail_from_staff_is_outbound_and_belongs_to_each_external_recipient(
    hub: Hub, mail: InboundMail
) -> None:
    raw = message(1, sender="mia@shop.example", to="ada@example.com, bob@example.org, tom@shop.example")
    outcome = mail.record(raw, ORIGIN)
    emails = of_type(all_events(hub), "EmailRecorded")
    assert outcome.kind == "email" and len(outcome.source_keys) == 2
    assert {e.direction for e in emails} == {"outbound"}
    owners = {hub.find_by_contact("email", a) for a in ("ada@example.com", "bob@example.org")}
    assert {e.originator_id for e in emails} == owners and len(owners) == 2


def test_replies_from_different_customers_to_one_newsletter_never_share_a_thread(
    hub: Hub, mail: InboundMail
) -> None:
    refs = "In-Reply-To: <news1@shop.example>\nReferences: <news1@shop.example>"
    mail.record(message(1, sender="ada@example.com", subject="Re: News", headers=refs), ORIGIN)
    mail.record(message(2, sender="bob@example.org", subject="Re: News", headers=refs), ORIGIN)
    threads = {e.thread_id for e in of_type(all_events(hub), "EmailRecorded")}
    assert len(threads) == 2


def test_a_conversation_with_one_customer_stays_in_one_thread(hub: Hub, mail: InboundMail) -> None:
    mail.record(message(1, sender="ada@example.com"), ORIGIN)
    mail.record(message(2, sender="mia@shop.example", to="ada@example.com",
                        headers="In-Reply-To: <m1@example.com>\nReferences: <m1@example.com>"), ORIGIN)
    mail.record(message(3, sender="ada@example.com",
                        headers="In-Reply-To: <m2@example.com>\n"
                                "References: <m1@example.com> <m2@example.com>"), ORIGIN)
    emails = of_type(all_events(hub), "EmailRecorded")
    assert len(emails) == 3 and len({e.thread_id for e in emails}) == 1


def test_the_same_message_read_twice_is_recorded_once(hub: Hub, mail: InboundMail) -> None:
    assert not mail.record(message(1), ORIGIN).duplicate
    assert mail.record(message(1), ORIGIN).duplicate
    assert len(of_type(all_events(hub), "EmailRecorded")) == 1


def test_fax_by_email_becomes_a_fax_with_its_pdf_as_the_document(
    hub: Hub, mail: InboundMail, tmp_path: Path
) -> None:
    pdf = b"%PDF-1.4 fax page"
    raw = multipart(1, [("text/plain", b"You have a fax", None), ("application/pdf", pdf, "fax.pdf")],
                    sender="gateway@fax.example")
    raw = raw.replace(b"Subject: multipart 1", b"Subject: Fax from +44 20 7946 0018")
    assert mail.record(raw, ORIGIN).kind == "fax"
    (fax,) = of_type(all_events(hub), "FaxRecorded")
    assert fax.from_number == "+44 20 7946 0018" and fax.status == "complete"
    assert BlobStore(tmp_path / "blobs").get(fax.document_sha256) == pdf
    assert hub.find_by_contact("fax", "+442079460018") is not None


def _dsn(envid: str, original: str | None, recipient: str = "ada@example.com") -> bytes:
    headers_part = (
        "--rep\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original}\r\nSubject: Your invoice\r\n\r\n" if original else "")
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: mia@shop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="rep"\r\n\r\n'
        "--rep\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--rep\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\nOriginal-Envelope-Id: {envid}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
        f"{headers_part}--rep--\r\n"
    ).encode()


@pytest.mark.parametrize("with_headers", [True, False])
def test_a_delivery_status_notification_is_attached_to_the_original_outbound_email(
    hub: Hub, sqlite_env: dict[str, str], tmp_path: Path, with_headers: bool
) -> None:
    hub.execute(em.SendEmail(source_key="send-1", from_address="mia@shop.example",
                            to=["ada@example.com"], subject="Your invoice", body_text="Hi"))
    (queued,) = of_type(all_events(hub), "EmailQueued")
    outbox = HubOutbox(Dependencies(settings_mod.load(sqlite_env), hub=hub))
    mail = InboundMail(hub, BlobStore(tmp_path / "blobs"), RULES,
                       envelope_lookup=outbox.message_for_envelope,
                       sent_lookup=outbox.customer_for_message)
    # Forwarded: the report names another address than the one the hub wrote to.
    raw = _dsn(queued.envelope_id, queued.message_id if with_headers else None,
               recipient="ada.lovelace@forward.example")
    assert mail.record(raw, ORIGIN).kind == "bounce"
    events = all_events(hub)
    (bounce,) = of_type(events, "EmailBounced")
    assert bounce.original_message_id == queued.message_id
    assert bounce.originator_id == queued.originator_id
    assert (bounce.recipient, bounce.action, bounce.status) == (
        "ada.lovelace@forward.example", "failed", "5.1.1")
    assert not of_type(events, "EmailRecorded")
    assert hub.find_by_contact("email", "ada.lovelace@forward.example") is None


def test_a_report_about_mail_the_hub_never_sent_is_quarantined_and_creates_no_prospect(
    hub: Hub, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    outbox = HubOutbox(Dependencies(settings_mod.load(sqlite_env), hub=hub))
    mail = InboundMail(hub, BlobStore(tmp_path / "blobs"), RULES,
                       envelope_lookup=outbox.message_for_envelope,
                       sent_lookup=outbox.customer_for_message, batch_sink=BulkSink(hub))
    outcome = mail.record(_dsn("x", "<someone-else@elsewhere.example>"), ORIGIN)
    assert outcome.kind == "quarantine"
    events = all_events(hub)
    (q,) = of_type(events, "MessageQuarantined")
    assert q.reason == "unmatched" and "<someone-else@elsewhere.example>" in q.detail
    assert not of_type(events, "Customer.Registered") and not of_type(events, "EmailBounced")


def test_staff_only_mail_and_unreadable_reports_are_quarantined_with_their_bytes(
    hub: Hub, mail: InboundMail, tmp_path: Path
) -> None:
    internal = message(1, sender="mia@shop.example", to="tom@shop.example")
    orphan = _dsn("nope", None)
    assert mail.record(internal, ORIGIN).kind == "quarantine"
    assert mail.record(orphan, ORIGIN).kind == "quarantine"
    reasons = {q.reason: q for q in of_type(all_events(hub), "MessageQuarantined")}
    assert set(reasons) == {"no-customer", "invalid"}
    assert BlobStore(tmp_path / "blobs").get(reasons["no-customer"].raw_ref) == internal


def test_a_long_body_is_capped_in_the_event_and_kept_whole_in_a_blob(
    hub: Hub, hub_blobs: tuple[InboundMail, BlobStore]
) -> None:
    mail, blobs = hub_blobs
    text = "word " * 10_000
    mail.record(message(1, body=text), ORIGIN)
    (email,) = of_type(all_events(hub), "EmailRecorded")
    assert text.startswith(email.body_text) and 990 < len(email.body_text) <= 1000
    assert blobs.get(email.body_ref).decode() == text.strip()


@pytest.fixture
def hub_blobs(hub: Hub, tmp_path: Path) -> tuple[InboundMail, BlobStore]:
    blobs = BlobStore(tmp_path / "blobs")
    rules = InboundRules(staff_domains=frozenset({"shop.example"}), body_cap=1000)
    return InboundMail(hub, blobs, rules), blobs


def test_an_email_to_an_unknown_address_held_for_triage_is_queued_once_assigned(
    sqlite_env: dict[str, str]
) -> None:
    hub = make_hub({**sqlite_env, "TOUCHSTREAM_UNKNOWN_CONTACTS": "triage"})
    try:
        cmd = em.SendEmail(source_key="s-1", from_address="mia@shop.example",
                           to=["new@example.com"], subject="Hello", body_text="Hi")
        assert hub.execute(cmd).held_for_triage
        ada = hub.execute(m.RegisterCustomer(name="Ada", source_key="ada")).customer_id
        hub.assign_held(hub.source_key_of(cmd), UUID(ada))
        (queued,) = of_type(all_events(hub), "EmailQueued")
        assert str(queued.originator_id) == ada and queued.message_id.endswith("@shop.example>")
    finally:
        hub.close()


def test_a_copy_with_an_added_header_in_the_same_batch_is_the_same_message(
    hub: Hub, mail: InboundMail
) -> None:
    original = message(1)
    migrated = b"X-Migrated-From: old.example\r\n" + original
    first, copy = mail.record_batch([Fetched(r, len(r), ORIGIN) for r in (original, migrated)])
    assert (first.kind, first.duplicate) == ("email", False)
    assert (copy.kind, copy.duplicate, copy.source_keys) == ("email", True, first.source_keys)
    assert len(of_type(all_events(hub), "EmailRecorded")) == 1
