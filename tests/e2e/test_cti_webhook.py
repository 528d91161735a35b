"""Generic CTI webhook: HMAC with a timestamp window, events become call steps."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from channels.phone.config import CtiConfig
from channels.phone.cti import cti_router
from channels.phone.directory import SQLiteCallDirectory
from commands.hub import Hub
from domain.calls import CallStep, summarise_call
from domain.customer import Customer
from tests.support.phone import app_with, provider, sqlite_hub

SECRET = "cti-shared-secret"
NOW = 1_790_000_000.0


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = sqlite_hub(tmp_path)
    yield h
    h.close()


@pytest.fixture
def client(hub: Hub, tmp_path: Path) -> Iterator[TestClient]:
    directory = SQLiteCallDirectory(tmp_path / "calls.db")
    config = CtiConfig(secret=SECRET, window_s=300, clock=lambda: NOW)
    with TestClient(app_with(cti_router(provider(hub), config, directory))) as c:
        yield c
    directory.close()


def post(client: TestClient, event: dict[str, object], *, at: float = NOW,
         secret: str = SECRET, body: bytes | None = None):  # type: ignore[no-untyped-def]
    raw = json.dumps(event).encode() if body is None else body
    ts = str(int(at))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return client.post("/webhooks/cti", content=raw, headers={
        "Content-Type": "application/json", "X-Touchstream-Timestamp": ts,
        "X-Touchstream-Signature": f"sha256={sig}"})


def call_steps(hub: Hub, number: str = "+442079460018") -> list[Customer.CallStepRecorded]:
    cid = hub.find_by_contact("phone", number)
    assert cid is not None
    return [e for e in hub.stream(cid) if isinstance(e, Customer.CallStepRecorded)]


NEW_CALL = {"event": "newCall", "callId": "pbx-1", "from": "020 7946 0018", "to": "100",
            "direction": "inbound", "queue": "support", "ivrChoices": ["2", "1"],
            "timestamp": "2026-11-24T09:00:00+00:00"}


def test_signed_call_lifecycle_becomes_steps_and_a_summary(client: TestClient, hub: Hub) -> None:
    assert post(client, NEW_CALL).status_code == 200
    # answer and hangup carry no number: the call's customer is remembered.
    assert post(client, {"event": "answer", "callId": "pbx-1", "agent": "mia",
                         "timestamp": "2026-11-24T09:00:40+00:00"}).status_code == 200
    r = post(client, {"event": "hangup", "callId": "pbx-1", "cause": "normal",
                      "timestamp": "2026-11-24T09:05:40+00:00"})
    assert r.status_code == 200, r.text
    steps = call_steps(hub)
    assert [e.step for e in steps] == ["queued", "answered", "ended"]
    assert steps[0].details["ivr_choices"] == "2,1" and steps[0].queue == "support"
    summary = summarise_call(CallStep.from_event(e) for e in steps)
    assert (summary.outcome, summary.wait_s, summary.duration_s, summary.agent) == (
        "answered", 40, 300, "mia")


def test_hangup_before_answer_with_no_answer_cause_is_missed(
    client: TestClient, hub: Hub
) -> None:
    post(client, {**NEW_CALL, "queue": None})
    post(client, {"event": "hangup", "callId": "pbx-1", "cause": "no-answer",
                  "timestamp": "2026-11-24T09:00:30+00:00"})
    summary = summarise_call(CallStep.from_event(e) for e in call_steps(hub))
    assert summary.outcome == "missed" and summary.wait_s == 30


def test_same_event_twice_records_one_step(client: TestClient, hub: Hub) -> None:
    first, second = post(client, NEW_CALL), post(client, NEW_CALL)
    assert (first.json()["status"], second.json()["status"]) == ("recorded", "duplicate")
    assert len(call_steps(hub)) == 1


@pytest.mark.parametrize("at", [NOW - 301, NOW + 301])
def test_stale_or_future_timestamp_is_refused(client: TestClient, hub: Hub, at: float) -> None:
    r = post(client, NEW_CALL, at=at)
    assert r.status_code == 403 and "window" in r.json()["detail"]
    assert hub.find_by_contact("phone", "+442079460018") is None


def test_timestamp_at_the_edge_of_the_window_is_accepted(client: TestClient) -> None:
    assert post(client, NEW_CALL, at=NOW - 299).status_code == 200


def test_wrong_secret_is_refused(client: TestClient, hub: Hub) -> None:
    assert post(client, NEW_CALL, secret="guess").status_code == 403
    assert hub.find_by_contact("phone", "+442079460018") is None


def test_body_changed_after_signing_is_refused(client: TestClient, hub: Hub) -> None:
    ts = str(int(NOW))
    raw = json.dumps(NEW_CALL).encode()
    sig = hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    tampered = raw.replace(b"support", b"sales__")
    r = client.post("/webhooks/cti", content=tampered, headers={
        "Content-Type": "application/json", "X-Touchstream-Timestamp": ts,
        "X-Touchstream-Signature": sig})
    assert r.status_code == 403
    assert hub.find_by_contact("phone", "+442079460018") is None


def test_missing_signature_is_refused(client: TestClient) -> None:
    r = client.post("/webhooks/cti", json=NEW_CALL)
    assert r.status_code == 403 and "missing" in r.json()["detail"]


def test_unknown_field_or_event_is_refused_with_a_reason(client: TestClient) -> None:
    r = post(client, {**NEW_CALL, "colour": "blue"})
    assert r.status_code == 422 and "colour" in r.json()["detail"]
    r = post(client, {**NEW_CALL, "event": "explode"})
    assert r.status_code == 422 and "event" in r.json()["detail"]
