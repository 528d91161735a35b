"""A campaign end to end over HTTP and a real SMTP server (aiosmtpd in-process): double
opt-in by the signed link, consented recipients get the mail with RFC 8058 headers, a
withdrawn one is suppressed at send time (never sent), the one-click unsubscribe works,
and a reply is attributed to the campaign."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller

from commands import messages as m
from projections import registry
from projections.engine import Worker
from projections.outbox.view import OutboxView
from tests.conftest import store_env
from tests.support.api import Api, running_api
from tests.support.dovecot import free_port
from tests.support.mail import all_events, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.channel_routes import channel_routers
from touchstream.email_wiring import build_sender
from touchstream.read_side import read_routes

BASE = "http://hub.test"


class Relay:
    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 2.0.0 queued"


@pytest.fixture
def relay() -> Iterator[Relay]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
def env(relay: Relay, tmp_path: Path) -> dict[str, str]:
    e = store_env("sqlite", tmp_path / "data")
    e.update({"TOUCHSTREAM_SMTP_HOST": "127.0.0.1",
              "TOUCHSTREAM_SMTP_PORT": str(relay.port),  # type: ignore[attr-defined]
              "TOUCHSTREAM_SMTP_SECURITY": "plain", "TOUCHSTREAM_SMTP_TIMEOUT": "5",
              "TOUCHSTREAM_PUBLIC_BASE_URL": BASE})
    return e


@pytest.fixture
def api(env: dict[str, str]) -> Iterator[Api]:
    settings = settings_mod.load(env)
    with running_api(env, (read_routes, *channel_routers(settings))) as running:
        yield running


def _catch_up(deps: Dependencies) -> None:
    db = deps.read_store.connect()
    try:
        Worker(db, deps.event_source(),
               [(p, None) for p in registry.select(["segments", "campaigns", "consent"])]
               ).catch_up()
    finally:
        db.close()


def _ok(r: Any, status: int = 201) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _body(msg: Message) -> str:
    part = msg.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode()


def test_a_campaign_reaches_consenting_people_only_and_its_reply_is_attributed(
        api: Api, env: dict[str, str], relay: Relay) -> None:
    deps = Dependencies(settings_mod.load(env), hub=api.hub)
    sender = build_sender(deps)
    people = {}
    for nick in ("ada", "bob", "cy"):
        people[nick] = _ok(api.post("/commands/register-customer", {
            "name": nick, "contact_points": [{"kind": "email", "value": f"{nick}@example.com"}]},
            role="marketing"))["customer_id"]
    ada, bob, cy = people["ada"], people["bob"], people["cy"]
    consent = {"consent_channel": "email", "purpose": "marketing",
               "evidence_kind": "form-submission"}
    _ok(api.post("/commands/give-consent", {**consent, "customer_id": ada,
                                            "evidence_id": "sub-1"}, role="marketing"))
    _ok(api.post("/commands/give-consent", {**consent, "customer_id": cy,
                                            "evidence_id": "sub-3"}, role="agent"))
    _ok(api.post("/commands/withdraw-consent", {
        "customer_id": cy, "consent_channel": "email", "purpose": "marketing",
        "source_key": "cy-called-to-say-no"}, role="agent"))

    # Bob opts in twice over: the confirmation email carries a signed link served by the hub.
    request = {"customer_id": bob, "purpose": "marketing", "evidence_id": "sub-2",
               "from_address": "news@shop.example"}
    _ok(api.post("/commands/request-consent", request, role="marketing"))
    assert _ok(api.post("/commands/request-consent", request, role="marketing"), 200)[
        "duplicate"]
    assert sender.run_once() == ["sent"]
    [confirmation] = relay.received
    link = re.search(r"http://hub\.test(/marketing/confirm/\S+)", _body(confirmation))
    assert link is not None and confirmation["To"] == "bob@example.com"
    page = api.client.get(link.group(1))
    assert page.status_code == 200 and 'method="post"' in page.text  # a scanner gives no consent
    assert api.client.post(link.group(1)[:-3] + "xyz").status_code == 400  # forged
    assert api.client.post(link.group(1)).status_code == 200
    assert api.client.post(link.group(1)).status_code == 200  # twice: still one consent

    segment, campaign = str(uuid4()), str(uuid4())
    _ok(api.post("/commands/define-segment", {"segment_id": segment, "name": "Prospects",
                                              "rule": {"lifecycle": ["prospect"]}},
                 role="marketing"))
    _ok(api.post("/commands/define-campaign", {
        "campaign_id": campaign, "name": "Spring", "channel": "email", "budget": "100.00",
        "currency": "EUR", "starts_on": "2020-01-01", "ends_on": "2099-12-31",
        "segment_id": segment, "code": "SPRING", "attribution_window_days": 30},
        role="marketing"))
    assert api.post("/commands/define-campaign", {}, role="agent").status_code == 403
    _catch_up(deps)
    send = {"campaign_id": campaign, "from_address": "news@shop.example",
            "subject": "Spring offer", "body_text": "Hello,\n\nour spring offer."}
    assert api.post("/commands/send-campaign", send, role="marketing").status_code == 409
    _ok(api.post("/commands/launch-campaign", {"campaign_id": campaign}, role="marketing"))
    report = _ok(api.post("/commands/send-campaign", send, role="marketing"), 200)
    assert (report["members"], report["queued"]) == (3, 3)
    assert _ok(api.post("/commands/send-campaign", send, role="marketing"), 200)[
        "already_queued"] == 3

    assert sorted(sender.run_once()) == ["sent", "sent", "suppressed"]
    assert sender.run_once() == []
    mails = {msg["To"]: msg for msg in relay.received[1:]}
    assert set(mails) == {"ada@example.com", "bob@example.com"}  # cy withdrew: never sent
    suppressed = [e for e in OutboxView(deps.read_store).entries() if e.status == "suppressed"]
    assert [e.to for e in suppressed] == [["cy@example.com"]]
    ada_mail = mails["ada@example.com"]
    assert ada_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = urlsplit(ada_mail["List-Unsubscribe"].strip("<>"))
    assert f"{unsubscribe.scheme}://{unsubscribe.netloc}" == BASE
    assert unsubscribe.path in _body(ada_mail)

    # RFC 8058: mail software posts "List-Unsubscribe=One-Click" to the URL; no page, no key.
    one_click = api.client.post(unsubscribe.path, content="List-Unsubscribe=One-Click",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200 and "unsubscribed" in one_click.text
    assert api.client.post(unsubscribe.path).status_code == 200  # again: nothing new
    assert len(of_type(all_events(api.hub), "ConsentWithdrawn")) == 2  # cy's and ada's

    bob_mid = mails["bob@example.com"]["Message-ID"]
    reply = api.hub.execute(m.RecordEmail(
        message_id="<re-bob@example.com>", in_reply_to=bob_mid, references=[bob_mid],
        from_address="bob@example.com", to=["news@shop.example"], subject="Re: Spring offer",
        body_text="Yes, call me."))
    _catch_up(deps)
    figures = _ok(api.client.get(f"/marketing/campaigns/{campaign}/performance",
                                 headers=api.auth("marketing")), 200)
    assert {k: figures[k] for k in ("queued", "sent", "delivered", "suppressed",
                                    "unsubscribed", "responses", "responses_by_channel",
                                    "cost_per_response")} == {
        "queued": 3, "sent": 2, "delivered": 2, "suppressed": 1, "unsubscribed": 1,
        "responses": 1, "responses_by_channel": {"email": 1}, "cost_per_response": "100.00"}
    drill = api.client.get(f"/marketing/campaigns/{campaign}/events",
                           params={"metric": "response"}, headers=api.auth("analyst")).json()
    assert [i["event_id"] for i in drill["items"]] == reply.event_ids
    assert api.client.get(f"/marketing/campaigns/{campaign}/performance",
                          headers=api.auth("agent")).status_code == 403
    states = api.client.get(f"/marketing/customers/{bob}/consent",
                            headers=api.auth("agent")).json()
    assert [(c["state"], c["valid"], c["evidence_kind"]) for c in states["consents"]] == [
        ("given", True, "double-opt-in")]
    members = api.client.get(f"/marketing/segments/{segment}/members",
                             headers=api.auth("marketing")).json()
    assert members["count"] == 3
