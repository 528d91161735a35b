"""Fax webhooks: signature first, then an SSRF-guarded fetch of the document into the blob store."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from channels.phone.config import FaxConfig
from channels.phone.fax import fax_router
from channels.phone.media import MediaPolicy, MediaRefusedError, fetch_media
from commands import messages as m
from commands.hub import Hub
from domain.customer import Customer
from tests.support.phone import app_blobs, app_with, provider, sqlite_hub

SECRET = "fax-secret"
NOW = 1_790_000_000.0
PDF = b"%PDF-1.4\n" + b"0" * 5000 + b"\n%%EOF\n"


class MediaServer:
    """A real HTTP server on loopback that records which paths were asked for."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.end_headers()
                    return
                body = PDF * (20 if self.path.startswith("/big") else 1)
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                if not self.path.startswith("/big-unsized"):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def media() -> Iterator[MediaServer]:
    server = MediaServer()
    yield server
    server.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = sqlite_hub(tmp_path)
    yield h
    h.close()


def config(**kw: object) -> FaxConfig:
    base: dict[str, object] = {
        "secret": SECRET, "allowed_hosts": frozenset({"127.0.0.1"}),
        "max_document_bytes": 50_000, "allow_private_addresses": True,
        "require_https": False, "clock": lambda: NOW}
    return FaxConfig(**{**base, **kw})  # type: ignore[arg-type]


def client_for(hub: Hub, tmp_path: Path, **kw: object) -> TestClient:
    return TestClient(app_with(fax_router(provider(hub), config(**kw), app_blobs(hub, tmp_path))))


def post(client: TestClient, path: str, payload: dict[str, object], secret: str = SECRET):  # type: ignore[no-untyped-def]
    raw = json.dumps(payload).encode()
    ts = str(int(NOW))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return client.post(f"/webhooks/fax/{path}", content=raw, headers={
        "Content-Type": "application/json", "X-Touchstream-Timestamp": ts,
        "X-Touchstream-Signature": f"sha256={sig}"})


def faxes(hub: Hub, number: str = "+442079460018") -> list[Customer.FaxRecorded]:
    cid = hub.find_by_contact("fax", number)
    return [] if cid is None else [e for e in hub.stream(cid)
                                   if isinstance(e, Customer.FaxRecorded)]


def inbound(media: MediaServer, path: str = "/fax/1.pdf", **kw: object) -> dict[str, object]:
    return {"faxId": "FX1", "from": "+442079460018", "to": "+442079460000", "pages": 2,
            "mediaUrl": media.url(path), **kw}


def test_signed_inbound_fax_is_fetched_stored_as_a_blob_and_recorded(
    hub: Hub, tmp_path: Path, media: MediaServer
) -> None:
    with client_for(hub, tmp_path) as client:
        r = post(client, "inbound", inbound(media))
        assert r.status_code == 200, r.text
        again = post(client, "inbound", inbound(media))
        assert again.json()["status"] == "duplicate"
    (fax,) = faxes(hub)
    blobs = app_blobs(hub, tmp_path)
    # Addressed by a keyed digest (under the sender's number: one copy per person), not
    # the SHA-256 anyone could compute from the PDF, and sealed at rest.
    assert fax.document_sha256 == blobs.address_of(PDF, owner="phone:+442079460018")
    assert fax.document_sha256 != hashlib.sha256(PDF).hexdigest()
    assert (fax.status, fax.pages, fax.content_type, fax.document_size) == (
        "complete", 2, "application/pdf", len(PDF))
    assert blobs.get(fax.document_sha256) == PDF
    (stored,) = [p for p in blobs.root.rglob("*") if p.is_file()]
    assert stored.name == fax.document_sha256 and b"%PDF" not in stored.read_bytes()


def test_bad_signature_is_refused_before_anything_is_fetched(
    hub: Hub, tmp_path: Path, media: MediaServer
) -> None:
    with client_for(hub, tmp_path) as client:
        assert post(client, "inbound", inbound(media), secret="wrong").status_code == 403
    assert media.hits == [] and faxes(hub) == []


@pytest.mark.parametrize("payload_kw", [{"pages": 1, "pagesExpected": 3}, {"status": "partial"}])
def test_partial_fax_is_flagged(hub: Hub, tmp_path: Path, media: MediaServer,
                                payload_kw: dict[str, object]) -> None:
    with client_for(hub, tmp_path) as client:
        assert post(client, "inbound", inbound(media, **payload_kw)).status_code == 200
    assert faxes(hub)[0].status == "partial"


def test_host_outside_the_allow_list_is_not_fetched(
    hub: Hub, tmp_path: Path, media: MediaServer
) -> None:
    with client_for(hub, tmp_path, allowed_hosts=frozenset({"faxes.example.com"})) as client:
        r = post(client, "inbound", inbound(media))
    assert r.status_code == 422 and "allowed list" in r.json()["detail"]
    assert media.hits == [] and faxes(hub) == []


def test_private_address_is_refused_unless_explicitly_allowed(
    hub: Hub, tmp_path: Path, media: MediaServer
) -> None:
    with client_for(hub, tmp_path, allowed_hosts=frozenset({"localhost"}),
                    allow_private_addresses=False) as client:
        r = post(client, "inbound", inbound(media, mediaUrl=media.url("/fax/1.pdf", "localhost")))
    assert r.status_code == 422 and "non-public" in r.json()["detail"]
    assert media.hits == []


def test_redirect_is_not_followed(hub: Hub, tmp_path: Path, media: MediaServer) -> None:
    with client_for(hub, tmp_path) as client:
        r = post(client, "inbound", inbound(media, "/redirect"))
    assert r.status_code == 422 and "redirect" in r.json()["detail"]
    assert media.hits == ["/redirect"] and faxes(hub) == []


@pytest.mark.parametrize("path", ["/big.pdf", "/big-unsized.pdf"])
def test_document_over_the_size_cap_is_refused(
    hub: Hub, tmp_path: Path, media: MediaServer, path: str
) -> None:
    with client_for(hub, tmp_path) as client:
        r = post(client, "inbound", inbound(media, path))
    assert r.status_code == 422 and "larger than" in r.json()["detail"]
    assert faxes(hub) == []


def test_unreachable_media_asks_the_provider_to_retry(hub: Hub, tmp_path: Path) -> None:
    with client_for(hub, tmp_path) as client:
        r = post(client, "inbound", {"faxId": "FX2", "from": "+442079460018",
                                     "mediaUrl": "http://127.0.0.1:9/nothing-listens"})
    assert r.status_code == 502 and faxes(hub) == []


def test_https_is_required_by_default() -> None:
    policy = MediaPolicy(allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=10)
    with pytest.raises(MediaRefusedError, match="scheme"):
        fetch_media("http://127.0.0.1/x.pdf", policy)
    with pytest.raises(MediaRefusedError, match="non-public"):
        fetch_media("https://127.0.0.1/x.pdf", policy)


def test_outbound_fax_intent_and_result_are_two_events(hub: Hub, tmp_path: Path) -> None:
    hub.execute(m.RecordFax(fax_id="OUT1", direction="outbound", to_number="+442079460018",
                            status="queued", pages=3))
    with client_for(hub, tmp_path) as client:
        r = post(client, "outbound-status", {"faxId": "OUT1", "to": "+442079460018",
                                             "status": "delivered", "pages": 3})
        assert r.status_code == 200, r.text
        assert post(client, "outbound-status", {"faxId": "OUT1", "to": "+442079460018",
                                                "status": "delivered", "pages": 3}
                    ).json()["status"] == "duplicate"
    assert [(f.direction, f.status) for f in faxes(hub)] == [
        ("outbound", "queued"), ("outbound", "complete")]
