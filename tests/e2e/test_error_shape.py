"""Every error answer of the app has the one shape of ``touchstream.http_errors``."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import store_env
from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store
from touchstream.bootstrap import Dependencies
from touchstream.http_errors import ERROR_CODES, ErrorPublic
from touchstream.serve import build_app

CTI_SECRET = "cti-secret-for-the-shape-test"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    # the CTI secret mounts the CTI webhook
    env = {**store_env("sqlite", tmp_path / "data"), "TOUCHSTREAM_CTI_SECRET": CTI_SECRET}
    conf = settings_mod.load(env)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, None, role)[1] for role in ("admin", "analyst")}
    keys.close()
    with TestClient(build_app(Dependencies(conf), projections=False)) as client:
        yield client, {r: f"Bearer {t}" for r, t in tokens.items()}


def _signed_cti_as_text(client: TestClient) -> Any:
    body = b'{"event": "newCall"}'
    stamp = str(int(time.time()))
    mac = hmac.new(CTI_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return client.post("/webhooks/cti", content=body, headers={
        "Content-Type": "text/plain", "X-Touchstream-Timestamp": stamp,
        "X-Touchstream-Signature": f"sha256={mac.hexdigest()}"})


def test_every_error_status_answers_the_one_shape(
        served: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = served
    admin = {"Authorization": auth["admin"]}
    made = client.post("/commands/register-customer", headers=admin,
                       json={"name": "Ada", "source_key": "shape:1"})
    assert made.status_code == 201, made.text
    behind = made.json()["position"]
    cid = made.json()["customer_id"]
    answers: dict[int, Any] = {
        400: client.get("/customers/lookup", headers=admin),
        401: client.get("/customers/search", params={"q": "a"}),
        403: client.post("/commands/add-note", headers={"Authorization": auth["analyst"]},
                         json={"customer_id": cid, "text": "x"}),
        404: client.post("/commands/add-note", headers=admin, json={
            "customer_id": "00000000-0000-4000-8000-000000000000", "text": "x"}),
        409: None,
        413: client.post("/commands/add-note", headers=admin, content=b"x" * (2 << 20)),
        415: _signed_cti_as_text(client),
        414: client.get("/customers/search", headers=admin, params={"q": "a" * 20_000}),
        422: client.post("/commands/add-contact-point", headers=admin, json={
            "customer_id": cid, "contact": {"kind": "phone", "value": "not a number"}}),
        429: None,
        503: client.get("/customers/search", headers=admin,
                        params={"q": "a", "min_position": behind}),
    }
    once = {**admin, "Idempotency-Key": "shape-1"}
    client.post("/commands/add-note", headers=once, json={"customer_id": cid, "text": "a"})
    answers[409] = client.post("/commands/add-note", headers=once,
                               json={"customer_id": cid, "text": "b"})
    for _ in range(30):  # the forms' per-client limit, as JSON
        limited = client.post("/forms/contact", json={})
        if limited.status_code == 429:
            answers[429] = limited
            break
    validation = client.get("/customers/search", headers=admin, params={"limit": "x"})
    for status, answer in [*answers.items(), (422, validation)]:
        assert answer is not None, status
        assert answer.status_code == status, (status, answer.text)
        body = answer.json()
        ErrorPublic.model_validate(body)
        assert body["error"] == ERROR_CODES[status], (status, body)
        assert body["reason"] and body["detail"] == body["reason"], (status, body)
        assert set(body) <= {"error", "reason", "detail", "errors"}, (status, body)
    assert validation.json()["errors"] == {
        "query.q": "Field required", "query.limit": "Input should be a valid integer, unable "
        "to parse string as an integer"}


def test_the_openapi_document_gives_every_error_the_one_schema(
        served: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = served
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "200" in responses or "201" in responses, (path, method)
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (path, status)
                elif "application/json" in response.get("content", {}):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema.get("type") != "string", (path, status, schema)
            if operation.get("security"):
                assert {"401", "403"} <= set(responses), (path, method)
