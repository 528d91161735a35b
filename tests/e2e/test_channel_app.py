"""The phone, fax, form and visit routers mounted in the real app (``create_app``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode
from uuid import UUID

import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import store_env
from tests.support.api import Api, running_api
from touchstream import settings as settings_mod
from touchstream.channel_routes import channel_routers

TOKEN = "twilio-token-for-tests"
BASE = "https://hub.example.com"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**store_env("sqlite", tmp_path / "data"),
            "TOUCHSTREAM_TWILIO_AUTH_TOKEN": TOKEN, "TOUCHSTREAM_PUBLIC_BASE_URL": BASE,
            "TOUCHSTREAM_CTI_SECRET": "cti-secret"}


@pytest.fixture
def api(env: dict[str, str]) -> Iterator[Api]:
    routers = tuple(channel_routers(settings_mod.load(env)))
    with running_api(env, routers) as api:
        yield api


def test_configured_webhooks_forms_and_visit_sync_are_mounted(api: Api) -> None:
    paths = set(api.client.get("/openapi.json").json()["paths"])
    assert {"/webhooks/twilio/voice/status", "/webhooks/twilio/voice/recording",
            "/webhooks/cti", "/forms/{name}", "/visits/sync"} <= paths
    assert "/webhooks/fax/inbound" not in paths  # no fax secret configured


def test_signed_twilio_callback_through_the_app_needs_no_api_key(api: Api) -> None:
    params = {"CallSid": "CA1", "CallStatus": "ringing", "SequenceNumber": "1",
              "From": "+442079460018", "To": "+442079460000", "Direction": "inbound"}
    path = "/webhooks/twilio/voice/status"
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    r = api.client.post(path, content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    assert r.status_code == 200, r.text
    unsigned = api.client.post(path, content=urlencode(params),
                               headers={"Content-Type": "application/x-www-form-urlencoded",
                                        **api.auth("admin")})
    assert unsigned.status_code == 403  # an API key is no substitute for the signature


def test_cti_webhook_through_the_app(api: Api) -> None:
    raw = json.dumps({"event": "newCall", "callId": "p1", "from": "+442079460018"}).encode()
    ts = str(int(time.time()))
    sig = hmac.new(b"cti-secret", ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    r = api.client.post("/webhooks/cti", content=raw, headers={
        "Content-Type": "application/json", "X-Touchstream-Timestamp": ts,
        "X-Touchstream-Signature": sig})
    assert r.status_code == 200, r.text


def test_offline_visits_sync_in_one_batch_with_per_item_outcomes(api: Api) -> None:
    r = api.post("/commands/register-customer", {"name": "Ada", "source_key": "reg:ada"})
    cid = r.json()["customer_id"]  # type: ignore[attr-defined]
    batch = {"visits": [
        {"customer_id": cid, "visit_id": "tab-1:1", "visit_kind": "field", "staff": "jonas",
         "occurred_at": "2020-05-01T09:00:00+00:00"},
        {"customer_id": cid, "visit_id": "tab-1:2", "visit_kind": "office", "staff": "jonas",
         "occurred_at": "2020-04-30T15:00:00+00:00"},
        {"customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "visit_id": "tab-1:3",
         "visit_kind": "office", "staff": "jonas"},
    ]}
    first = api.client.post("/visits/sync", json=batch, headers=api.auth("dispatcher"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["recorded"], body["duplicates"], body["refused"]) == (2, 0, 1)
    assert body["items"][2]["http_status"] == 404
    again = api.client.post("/visits/sync", json=batch, headers=api.auth("dispatcher")).json()
    assert (again["recorded"], again["duplicates"]) == (0, 2)
    visits = [e for e in api.hub.stream(UUID(cid)) if type(e).__name__ == "VisitRecorded"]
    assert [e.occurred_at.isoformat() for e in visits] == [
        "2020-05-01T09:00:00+00:00", "2020-04-30T15:00:00+00:00"]
    assert visits[0].actor == "api:test-dispatcher"


def test_visit_sync_needs_a_staff_key(api: Api) -> None:
    batch = {"visits": [{"customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11",
                         "visit_id": "x", "visit_kind": "office", "staff": "j"}]}
    assert api.client.post("/visits/sync", json=batch).status_code == 401
    assert api.client.post("/visits/sync", json=batch,
                           headers=api.auth("analyst")).status_code == 403


def test_public_form_is_served_without_a_key(api: Api) -> None:
    r = api.client.get("/forms/contact")
    assert r.status_code == 200 and "Contact us" in r.text
