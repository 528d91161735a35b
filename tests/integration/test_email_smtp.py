"""Outbound email against a real SMTP server (aiosmtpd in-process) with injected failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from channels.email.outbound import SmtpSender
from commands import email_messages as em
from commands import messages as m
from commands.hub import Hub
from tests.conftest import store_env
from tests.support.dovecot import free_port
from tests.support.hubs import make_hub
from tests.support.mail import all_events, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import HubOutbox, build_sender


class Relay:
    """An SMTP server whose next answers to DATA can be scripted."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.plan: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mode = self.plan.pop(0) if self.plan else "ok"
        if mode == "550":
            return "550 5.7.1 mailbox unavailable"
        self.received.append(envelope.original_content or envelope.content)
        if mode == "451":  # stored, then a temporary error: the classic ambiguous outcome
            return "451 4.3.0 try again later"
        if mode == "disconnect":
            server.transport.close()
            await asyncio.sleep(0)
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
    e.update({
        "TOUCHSTREAM_SMTP_HOST": "127.0.0.1", "TOUCHSTREAM_SMTP_PORT": str(relay.port),  # type: ignore[attr-defined]
        "TOUCHSTREAM_SMTP_SECURITY": "plain", "TOUCHSTREAM_SMTP_RETRY_SECONDS": "0",
        "TOUCHSTREAM_SMTP_TIMEOUT": "5", "TOUCHSTREAM_SMTP_MAX_ATTEMPTS": "3",
    })
    return e


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(env)
    yield h
    h.close()


@pytest.fixture
def sender(env: dict[str, str], hub: Hub) -> SmtpSender:
    return build_sender(Dependencies(settings_mod.load(env), hub=hub))


def queue(hub: Hub, key: str = "reply-1", **extra: Any) -> str:
    hub.execute(em.SendEmail(source_key=key, from_address="mia@shop.example",
                            to=["ada@example.com"], subject="Your invoice",
                            body_text="Hello Ada,\nhere it is.", **extra))
    (queued,) = [e for e in of_type(all_events(hub), "EmailQueued") if e.source_key.endswith(key)]
    return str(queued.message_id)


@pytest.mark.parametrize("failure", ["451", "disconnect"])
def test_ambiguous_outcome_is_retried_with_the_same_bytes_and_recorded_sent_once(
    relay: Relay, hub: Hub, sender: SmtpSender, failure: str
) -> None:
    message_id = queue(hub)
    relay.plan = [failure]
    assert sender.run_once() == ["unknown"]
    assert sender.run_once() == ["sent"]
    assert sender.run_once() == []
    assert len(relay.received) == 2 and relay.received[0] == relay.received[1]
    assert message_from_bytes(relay.received[0])["Message-ID"] == message_id
    events = all_events(hub)
    assert len(of_type(events, "EmailSent")) == 1
    assert [e.attempt for e in of_type(events, "EmailOutcomeUnknown")] == [1]


def test_permanent_refusal_is_recorded_failed_and_never_retried(
    relay: Relay, hub: Hub, sender: SmtpSender
) -> None:
    queue(hub)
    relay.plan = ["550"]
    assert sender.run_once() == ["failed"]
    assert sender.run_once() == []
    (failed,) = of_type(all_events(hub), "EmailSendFailed")
    assert failed.permanent and failed.reason.startswith("550")


def test_repeated_unknown_outcomes_give_up_after_the_configured_attempts(
    relay: Relay, hub: Hub, sender: SmtpSender
) -> None:
    queue(hub)
    relay.plan = ["451", "451", "451"]
    assert [sender.run_once() for _ in range(4)] == [["unknown"], ["unknown"], ["failed"], []]
    (failed,) = of_type(all_events(hub), "EmailSendFailed")
    assert not failed.permanent and "gave up after 3" in failed.reason


def test_a_resend_after_a_crash_before_recording_keeps_one_sent(
    relay: Relay, hub: Hub, sender: SmtpSender
) -> None:
    queue(hub)
    sender.outbox.refresh()
    (item,) = sender.outbox.due(*_now_window())
    asyncio.run(sender._send(item))  # delivered, then the process "died" before recording
    assert sender.run_once() == ["sent"]
    assert len(relay.received) == 2 and relay.received[0] == relay.received[1]
    assert len(of_type(all_events(hub), "EmailSent")) == 1


def test_duplicate_send_commands_queue_one_email_and_rebuilding_the_outbox_sends_nothing(
    relay: Relay, env: dict[str, str], hub: Hub, sender: SmtpSender
) -> None:
    first = queue(hub)
    again = hub.execute(em.SendEmail(source_key="reply-1", from_address="mia@shop.example",
                                    to=["ada@example.com"], subject="Your invoice",
                                    body_text="Hello Ada,\nhere it is."))
    assert again.duplicate
    assert sender.run_once() == ["sent"]
    outbox = HubOutbox(Dependencies(settings_mod.load(env), hub=hub))
    outbox.rebuild()
    assert [(e.message_id, e.status) for e in outbox.view.entries()] == [(first, "sent")]
    assert sender.run_once() == []
    assert len(relay.received) == 1


def test_a_reply_sets_in_reply_to_and_references_and_joins_the_customers_thread(
    relay: Relay, hub: Hub, sender: SmtpSender
) -> None:
    hub.execute(m.RecordEmail(source_key="in-1", message_id="<q1@example.com>",
                              from_address="ada@example.com", to=["support@shop.example"],
                              subject="Invoice?", body_text="Where is it?"))
    queue(hub, in_reply_to="<q1@example.com>")
    assert sender.run_once() == ["sent"]
    sent = message_from_bytes(relay.received[0])
    assert sent["In-Reply-To"] == "<q1@example.com>"
    assert sent["References"] == "<q1@example.com>"
    events = all_events(hub)
    (inbound,) = of_type(events, "EmailRecorded")
    (queued,) = of_type(events, "EmailQueued")
    assert queued.thread_id == inbound.thread_id
    assert queued.originator_id == inbound.originator_id


def _now_window() -> tuple[Any, Any, Any]:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC), timedelta(0), timedelta(0)


def test_delivery_over_starttls_with_authentication(tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[bytes] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        logins.append(auth_data.login)
        return AuthResult(success=auth_data.password == b"s3cret")

    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticator,
                            auth_require_tls=True)
    controller.start()
    try:
        env = store_env("sqlite", tmp_path / "data")
        env.update({
            "TOUCHSTREAM_SMTP_HOST": "127.0.0.1", "TOUCHSTREAM_SMTP_PORT": str(controller.port),
            "TOUCHSTREAM_SMTP_SECURITY": "starttls", "TOUCHSTREAM_SMTP_CA_FILE": str(cert),
            "TOUCHSTREAM_SMTP_USER": "mia", "TOUCHSTREAM_SMTP_PASSWORD": "s3cret",
        })
        hub = make_hub(env)
        try:
            queue(hub)
            assert build_sender(Dependencies(settings_mod.load(env), hub=hub)).run_once() == ["sent"]
        finally:
            hub.close()
    finally:
        controller.stop()
    assert logins == [b"mia"] and len(handler.received) == 1
