"""The canary: a person's data goes in through every path we can drive, is erased, and
no byte of it is left anywhere the hub keeps things.

One customer is given unique canary strings through the real app (commands API, the
public web form, offline visit sync, signed Twilio callbacks with a recording, a
fax recorded with its document in the blob store, an email recorded with its raw
message and an attachment in the blob store, an outbound email queued, a
touchpoint held for triage) and through ``touchstream import cdr`` (a row that
is quarantined). The privacy officer erases them over HTTP. Then every byte of every
file under the data folder (and, on PostgreSQL, every row of every table) is scanned
for each canary as plain UTF-8, lower-case, base64 at every alignment,
quoted-printable, UTF-16 (both byte orders) and, for the number, every digit form
of its E.164 value: zero hits. The read models rebuild equal to the live ones, and
the counts by channel are what they were before the erasure.
"""

from __future__ import annotations

import base64
import quopri
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from commands import email_messages as em
from projections import registry
from replays.rebuild import rebuild
from tests.conftest import store_env
from tests.e2e.test_cli import Cli
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.channel_routes import channel_routers
from touchstream.privacy_routes import privacy_routes
from touchstream.read_side import ProjectionService, read_routes

TWILIO_TOKEN = "twilio-token-for-canary"
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


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return {**store_env(request.param, tmp_path / "data"),
            "TOUCHSTREAM_TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TOUCHSTREAM_PUBLIC_BASE_URL": BASE,
            "TOUCHSTREAM_UNKNOWN_CONTACTS": "triage"}


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
    routers = [read_routes, privacy_routes, *channel_routers(settings)]
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


def raw_mail(attachment: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{NAME} <{CANARIES['email']}>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = CANARIES["mail_subject"]
    msg["Message-ID"] = "<canary-1@mail.example>"
    msg.set_content(f"Dear shop, {CANARIES['mail_body']} — {NAME}", cte="quoted-printable")
    msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="order.pdf")
    return msg.as_bytes()


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


def give_everything(app: App) -> str:
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
    blobs = app.deps.blobs
    document = f"%PDF-1.4 order form of {CANARIES['fax']}\n%%EOF\n".encode()
    app.post("/commands/record-fax", {
        "fax_id": "FX77", "from_number": NUMBER, "to_number": "+442079460000", "pages": 1,
        "document_sha256": blobs.put(document), "document_size": len(document),
        "content_type": "application/pdf"})

    attachment = f"%PDF-1.4 attachment of {CANARIES['attachment']}\n".encode()
    raw_ref, att_ref = blobs.put(raw_mail(attachment)), blobs.put(attachment)
    app.post("/commands/record-email", {
        "message_id": "<canary-1@mail.example>", "from_address": CANARIES["email"],
        "to": ["support@shop.example"], "subject": CANARIES["mail_subject"],
        "body_text": CANARIES["mail_body"], "raw_ref": raw_ref,
        "attachments": [{"sha256": att_ref, "size": len(attachment),
                         "content_type": "application/pdf", "filename": "order.pdf"}]})
    app.deps.hub.execute(em.SendEmail(  # as ``touchstream send-email`` queues it
        customer_id=UUID(cid), from_address="support@shop.example", source_key="out:canary",
        to=[CANARIES["email"]], subject=f"Re: {CANARIES['mail_subject']}",
        body_text=f"Dear {NAME}, {CANARIES['outbound']}"))

    # From an address nobody knew yet: held for triage; it turns out to be theirs.
    held = app.client.post("/commands/record-email", headers=app.auth("admin"), json={
        "message_id": "<held-1@mail.example>", "from_address": CANARIES["second_email"],
        "to": ["support@shop.example"], "subject": CANARIES["held"]})
    assert held.status_code == 202 and held.json()["held_for_triage"], held.text
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


def scan_postgres(uri: str) -> tuple[int, list[str]]:
    found: list[str] = []
    rows = 0
    with psycopg.connect(uri) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                rows += 1
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else (
                        str(value).encode())
                    found += hits(data, f"table {table}")
    return rows, found


def scan_everything(settings: settings_mod.Settings) -> list[str]:
    """Every file under the data folder; on PostgreSQL every row of every table too."""
    found = scan_files(settings.data_dir)
    if settings.event_store_kind == "postgres":
        rows, in_tables = scan_postgres(settings.event_store)
        assert rows > 50
        found += in_tables
    return found


def test_no_byte_of_an_erased_person_is_left_anywhere(env: dict[str, str], app: App,
                                                       tmp_path: Path) -> None:
    settings = settings_mod.load(env)
    data = settings.data_dir
    quarantine_a_cdr_row(env, tmp_path)
    cid = give_everything(app)
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

    erased = app.post("/commands/erase-customer", {"customer_id": cid, "reason": "DSR-2026-9"},
                      role="privacy")
    assert erased["erased"] == [cid] and not erased["duplicate"]
    assert erased["blobs_shredded"] == 3  # raw mail, attachment, fax document
    assert (erased["held_erased"], erased["quarantine_rows_removed"]) == (1, 1)
    assert erased["calls_forgotten"] >= 1
    after = app.summary_when(cid, lambda s: s["name"] == "(erased)")
    assert after["channels"] == before["channels"]  # counts by channel survive
    control = app.summary_when(other, lambda s: True)
    assert control["name"] == "Grace Control"
    assert app.deps.cdr_quarantine.waiting() == 0 and app.deps.hub.held_touchpoints() == []

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
    assert {"blobs", "phone", "quarantine", "master.key"} <= set(files), files
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
