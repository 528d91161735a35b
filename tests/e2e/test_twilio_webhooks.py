"""Twilio voice webhooks over HTTP: signatures checked with twilio's own validator,
duplicate and out-of-order deliveries, call state from the highest sequence."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from channels.phone.config import TwilioConfig
from channels.phone.directory import SQLiteCallDirectory
from channels.phone.group_commit import GroupCommit
from channels.phone.twilio import twilio_router
from commands.hub import Hub
from domain.calls import CallStep, summarise_call
from domain.customer import Customer
from tests.support.invariants import assert_no_duplicate_source_keys
from tests.support.phone import app_with, provider, sqlite_hub

TOKEN = "12345678901234567890123456789012"
BASE = "https://hub.example.com"
STATUS_PATH = "/webhooks/twilio/voice/status"
CALLER = "+442079460018"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = sqlite_hub(tmp_path)
    yield h
    h.close()


@pytest.fixture(params=["one-transaction-each", "group-commit"])
def client(hub: Hub, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    directory = SQLiteCallDirectory(tmp_path / "calls.db")
    config = TwilioConfig(auth_token=TOKEN, public_base_url=BASE)
    committer = GroupCommit(provider(hub)) if request.param == "group-commit" else None
    with TestClient(app_with(twilio_router(provider(hub), config, directory, committer))) as c:
        yield c
    if committer is not None:
        committer.close()
    directory.close()


def callback(status: str, seq: int, sid: str = "CA100", **extra: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": "AC1", "From": CALLER, "To": "+442079460000",
            "Direction": "inbound", "CallStatus": status, "SequenceNumber": str(seq),
            "Timestamp": f"Tue, 24 Nov 2026 09:00:{seq:02d} +0000", **extra}


def signed_post(client: TestClient, params: dict[str, str], *, url: str | None = None,
                path: str = STATUS_PATH, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    sig = RequestValidator(TOKEN).compute_signature(url or BASE + path, params)
    return client.post(path, content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig,
        **(headers or {})})


def steps(hub: Hub) -> list[Customer.CallStepRecorded]:
    cid = hub.find_by_contact("phone", CALLER)
    if cid is None:
        return []
    return [e for e in hub.stream(cid) if isinstance(e, Customer.CallStepRecorded)]


def test_signed_status_callback_records_one_step_on_the_callers_customer(
    client: TestClient, hub: Hub
) -> None:
    params = callback("ringing", 1)
    assert RequestValidator(TOKEN).validate(
        BASE + STATUS_PATH, params, RequestValidator(TOKEN).compute_signature(BASE + STATUS_PATH,
                                                                              params))
    r = signed_post(client, params)
    assert r.status_code == 200, r.text
    (ev,) = steps(hub)
    assert (ev.call_id, ev.step, ev.sequence, ev.direction) == ("CA100", "ringing", 1, "inbound")
    assert ev.occurred_at.isoformat() == "2026-11-24T09:00:01+00:00"
    assert ev.details["account_sid"] == "AC1"


@pytest.mark.parametrize("url", [BASE + ":443" + STATUS_PATH, BASE + STATUS_PATH])
def test_signature_over_url_with_or_without_default_port_is_accepted(
    client: TestClient, hub: Hub, url: str
) -> None:
    assert signed_post(client, callback("ringing", 1), url=url).status_code == 200
    assert len(steps(hub)) == 1


def test_missing_signature_is_refused_and_nothing_recorded(client: TestClient, hub: Hub) -> None:
    r = client.post(STATUS_PATH, content=urlencode(callback("ringing", 1)),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403 and "missing" in r.json()["detail"]
    assert steps(hub) == []


def test_tampered_parameter_is_refused(client: TestClient, hub: Hub) -> None:
    params = callback("ringing", 1)
    sig = RequestValidator(TOKEN).compute_signature(BASE + STATUS_PATH, params)
    params["CallStatus"] = "completed"
    r = client.post(STATUS_PATH, content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    assert r.status_code == 403
    assert steps(hub) == []


@pytest.mark.parametrize("url", [
    "https://hub.example.com:8443" + STATUS_PATH,
    "http://hub.example.com" + STATUS_PATH,
    "https://evil.example.com" + STATUS_PATH,
    BASE + "/webhooks/twilio/voice/recording",
])
def test_signature_for_another_url_or_port_is_refused(
    client: TestClient, hub: Hub, url: str
) -> None:
    assert signed_post(client, callback("ringing", 1), url=url).status_code == 403
    assert steps(hub) == []


def test_wrong_token_is_refused(client: TestClient, hub: Hub) -> None:
    params = callback("ringing", 1)
    sig = RequestValidator("another-token").compute_signature(BASE + STATUS_PATH, params)
    r = client.post(STATUS_PATH, content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    assert r.status_code == 403 and steps(hub) == []


def json_post(client: TestClient, body: bytes, claimed_hash: str):  # type: ignore[no-untyped-def]
    path = f"{STATUS_PATH}?bodySHA256={claimed_hash}"
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, {})
    return client.post(path, content=body, headers={
        "Content-Type": "application/json", "X-Twilio-Signature": sig})


def test_json_body_with_matching_body_sha256_is_accepted(client: TestClient, hub: Hub) -> None:
    body = json.dumps(callback("answered", 3)).encode()
    validator = RequestValidator(TOKEN)
    path = f"{STATUS_PATH}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    assert validator.validate(BASE + path, body.decode(),
                              validator.compute_signature(BASE + path, {}))
    assert json_post(client, body, hashlib.sha256(body).hexdigest()).status_code == 200
    assert [e.step for e in steps(hub)] == ["answered"]


def test_json_body_that_does_not_match_body_sha256_is_refused(
    client: TestClient, hub: Hub
) -> None:
    signed_body = json.dumps(callback("answered", 3)).encode()
    sent_body = json.dumps(callback("completed", 4)).encode()
    r = json_post(client, sent_body, hashlib.sha256(signed_body).hexdigest())
    assert r.status_code == 403 and "bodySHA256" in r.json()["detail"]
    assert steps(hub) == []


@pytest.mark.parametrize("times", [2, 10])
def test_retried_delivery_records_one_event(client: TestClient, hub: Hub, times: int) -> None:
    headers = {"I-Twilio-Idempotency-Token": "tok-1"}
    answers = [signed_post(client, callback("completed", 4, CallDuration="30"), headers=headers)
               for _ in range(times)]
    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["status"] for a in answers] == ["recorded"] + ["duplicate"] * (times - 1)
    assert len(steps(hub)) == 1


def test_concurrent_duplicate_deliveries_record_one_event(client: TestClient, hub: Hub) -> None:
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def deliver() -> None:
        barrier.wait()
        codes.append(signed_post(client, callback("in-progress", 2)).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 8
    assert len(steps(hub)) == 1
    assert_no_duplicate_source_keys(steps(hub))


def test_recording_callback_without_numbers_lands_on_the_calls_customer(
    client: TestClient, hub: Hub
) -> None:
    signed_post(client, callback("ringing", 1))
    rec = {"CallSid": "CA100", "AccountSid": "AC1", "RecordingSid": "RE1",
           "RecordingUrl": "https://api.twilio.com/rec/RE1", "RecordingStatus": "completed",
           "RecordingDuration": "31"}
    path = "/webhooks/twilio/voice/recording"
    assert signed_post(client, rec, path=path).status_code == 200
    assert signed_post(client, rec, path=path).json()["status"] == "duplicate"
    summary = summarise_call(CallStep.from_event(e) for e in steps(hub))
    assert summary.recordings == ("https://api.twilio.com/rec/RE1",)
    assert summary.state == "ringing"


def test_recording_callback_for_an_unknown_call_asks_for_a_retry(
    client: TestClient, hub: Hub
) -> None:
    rec = {"CallSid": "CA999", "RecordingSid": "RE9", "RecordingStatus": "completed"}
    r = signed_post(client, rec, path="/webhooks/twilio/voice/recording")
    assert r.status_code == 503 and r.headers["Retry-After"]


def test_unknown_call_status_is_refused_with_a_reason(client: TestClient, hub: Hub) -> None:
    r = signed_post(client, callback("exploded", 1))
    assert r.status_code == 422 and "exploded" in r.text
    assert steps(hub) == []


LIFECYCLE = [("initiated", 0), ("ringing", 1), ("in-progress", 2), ("completed", 3)]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(LIFECYCLE), repeats=st.lists(st.sampled_from(LIFECYCLE), max_size=4))
def test_out_of_order_and_repeated_callbacks_end_in_the_highest_sequence_state(
    client: TestClient, hub: Hub, order: list[tuple[str, int]], repeats: list[tuple[str, int]]
) -> None:
    sid = f"CA-{abs(hash((tuple(order), tuple(repeats))))}"
    for status, seq in [*order, *repeats]:
        assert signed_post(client, callback(status, seq, sid=sid, CallDuration="3")
                           ).status_code == 200
    mine = [e for e in steps(hub) if e.call_id == sid]
    assert sorted(e.sequence for e in mine) == [0, 1, 2, 3]  # one event per delivery key
    summary = summarise_call(CallStep.from_event(e) for e in mine)
    assert summary.state == "ended" and summary.outcome == "answered"
    assert summary.duration_s == 3
