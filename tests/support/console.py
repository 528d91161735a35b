"""The staff console on a temporary store: the app as ``serve`` builds it (read API,
channels with the Twilio webhook, console), the projections running, one key per role
(partner: ``p-1``), and a small data set with hostile strings in it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from commands import messages as m
from commands.hub import Hub
from tests.support.readside import ROLES
from touchstream import settings as settings_mod
from touchstream.adapters.keys import KeyStore, open_key_store
from touchstream.app import create_app
from touchstream.audit_routes import access_log_routes
from touchstream.bootstrap import Dependencies
from touchstream.channel_routes import channel_routers
from touchstream.console import console_routes
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub

TWILIO_TOKEN = "console-twilio-token-0123456789ab"
PUBLIC_BASE = "https://hub.example.org"
STATUS_PATH = "/webhooks/twilio/voice/status"

HOSTILE_NAME = '<script>alert("name")</script> Mallory'
HOSTILE_COMPANY = "javascript:alert(1)"
HOSTILE_SUBJECT = '<img src=x onerror=alert("subject")>'
HOSTILE_BODY = ('<html><body><script>alert("body")</script>'
                '<a href="javascript:alert(2)">click</a><iframe src="https://evil.example"></iframe>'
                '</body></html>')
ATTACHMENT = b"%PDF-1.4\n% the invoice the customer sent\n"


@dataclass
class Demo:
    """Ids of the data set's customers."""

    ada: str = ""
    duplicate: str = ""
    partnered: str = ""
    hostile: str = ""
    ada_events: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConsoleHub:
    app: FastAPI
    deps: Dependencies
    hub: Hub
    keys: KeyStore
    tokens: dict[str, str]
    demo: Demo
    projections: ProjectionService

    def wait_for_read_models(self, timeout: float = 20) -> None:
        head = int(self.hub.recorder.max_notification_id() or 0)
        views = self.deps.read_views
        deadline = time.monotonic() + timeout
        while min(v.position() for v in (views.timeline, views.directory, views.summary)) < head:
            if time.monotonic() > deadline:
                raise TimeoutError("read models did not catch up")
            time.sleep(0.01)


def twilio_post_args(params: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The body and headers of a Twilio status callback signed for ``PUBLIC_BASE``."""
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE + STATUS_PATH,
                                                                  params)
    return urlencode(params), {"Content-Type": "application/x-www-form-urlencoded",
                               "X-Twilio-Signature": signature}


def ringing(call_id: str, number: str) -> dict[str, str]:
    return {"CallSid": call_id, "AccountSid": "AC1", "From": number, "To": "+442079460000",
            "Direction": "inbound", "CallStatus": "ringing", "SequenceNumber": "0"}


def seed(hub: Hub, deps: Dependencies, timeline_events: int = 60) -> Demo:
    """A small data set: Ada with ``timeline_events`` touchpoints over every channel (one
    email with an attachment, one HTML mail), her duplicate, a partner's customer and a
    customer whose every field is hostile."""
    demo = Demo()
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

    def at(i: int) -> datetime:
        return start + timedelta(hours=7 * i)

    ada = hub.execute(m.RegisterCustomer(
        name="Ada Lovelace", company="Analytical Engines Ltd", lifecycle_stage="current",
        contact_points=[m.ContactPointIn(kind="phone", value="+44 20 7946 0018"),
                        m.ContactPointIn(kind="email", value="ada@example.com")],
        source_key="console-demo:ada", occurred_at=at(0)))
    demo.ada = ada.customer_id
    blob = deps.blobs.put(ATTACHMENT)
    for i in range(1, timeline_events):
        kind = i % 4
        if kind == 0:
            hub.execute(m.LogCall(call_id=f"demo-call-{i}", direction="inbound",
                                  from_number="+44 20 7946 0018", outcome="answered",
                                  duration_s=60 + i, summary=f"Call number {i}",
                                  occurred_at=at(i)))
        elif kind == 1:
            hub.execute(m.RecordEmail(
                message_id=f"<demo-{i}@mail.example.com>", from_address="ada@example.com",
                to=["support@example.org"], subject=f"Question {i}",
                body_text=f"Hello,\n\nquestion number {i}.\n\nAda",
                attachments=[m.Attachment(sha256=blob, size=len(ATTACHMENT),
                                          content_type="application/pdf",
                                          filename="invoice.pdf")] if i == 1 else [],
                occurred_at=at(i)))
        elif kind == 2:
            hub.execute(m.AddNote(customer_id=ada.customer_id, text=f"Note {i}",
                                  visibility="internal" if i % 8 == 2 else "shared",
                                  source_key=f"console-demo:note:{i}", occurred_at=at(i)))
        else:
            hub.execute(m.RecordVisit(customer_id=ada.customer_id, visit_id=f"demo-visit-{i}",
                                      visit_kind="office", staff="jonas", purpose=f"Visit {i}",
                                      occurred_at=at(i)))
    hub.execute(m.RecordEmail(
        message_id="<html@mail.example.com>", from_address="ada@example.com",
        to=["support@example.org"], subject=HOSTILE_SUBJECT, body_text=HOSTILE_BODY,
        occurred_at=at(timeline_events)))
    demo.ada_events = len(list(hub.stream(UUID(ada.customer_id))))
    dup = hub.execute(m.RegisterCustomer(
        name="Ada L.", contact_points=[m.ContactPointIn(kind="email", value="ada.l@example.net"),
                                       m.ContactPointIn(kind="phone", value="+44 113 496 0555")],
        source_key="console-demo:dup", occurred_at=at(2)))
    demo.duplicate = dup.customer_id
    hub.execute(m.AddNote(customer_id=dup.customer_id, text="Duplicate's own note",
                          visibility="shared", source_key="console-demo:dup-note",
                          occurred_at=at(3)))
    pat = hub.execute(m.RegisterCustomer(
        name="Pat Partnered", contact_points=[m.ContactPointIn(kind="phone",
                                                               value="+44 20 7946 0077")],
        source_key="console-demo:pat", occurred_at=at(1)))
    hub.execute(m.AssignPartner(customer_id=pat.customer_id, partner_id="p-1",
                                source_key="console-demo:pat-partner"))
    hub.execute(m.AddNote(customer_id=pat.customer_id, text="Internal about Pat",
                          visibility="internal", source_key="console-demo:pat-note"))
    demo.partnered = pat.customer_id
    bad = hub.execute(m.RegisterCustomer(
        name=HOSTILE_NAME, company=HOSTILE_COMPANY,
        contact_points=[m.ContactPointIn(kind="email", value="mallory@example.com")],
        source_key="console-demo:mallory", occurred_at=at(1)))
    hub.execute(m.AddNote(customer_id=bad.customer_id, text=HOSTILE_BODY,
                          source_key="console-demo:mallory-note"))
    hub.execute(m.LogCall(customer_id=bad.customer_id, call_id="hostile-call",
                          recording_ref="javascript:alert(3)", summary=HOSTILE_SUBJECT))
    demo.hostile = bad.customer_id
    return demo


@contextmanager
def console_hub(data_dir: Path, *, timeline_events: int = 60,
                env: dict[str, str] | None = None) -> Iterator[ConsoleHub]:
    """The app with the console, its projections running (also without a lifespan,
    as ``tests.support.browser.live_server`` serves it), seeded and caught up."""
    conf = settings_mod.load({
        "TOUCHSTREAM_DATA": str(data_dir), "TOUCHSTREAM_DEFAULT_REGION": "GB",
        "TOUCHSTREAM_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TOUCHSTREAM_PUBLIC_BASE_URL": PUBLIC_BASE, **(env or {})})
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None, f"{role}-person")[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    projections = ProjectionService(deps)
    try:
        demo = seed(hub, deps, timeline_events)
        app = create_app(deps, routers=[read_routes, *channel_routers(conf), access_log_routes,
                                        console_routes])
        projections.start()
        built = ConsoleHub(app, deps, hub, keys, tokens, demo, projections)
        built.wait_for_read_models()
        yield built
    finally:
        projections.stop()
        deps.close()
        keys.close()
        hub.close()
