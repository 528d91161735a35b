"""Command routes end to end: FastAPI app → Hub → SQLite, through a TestClient.

No ``from __future__ import annotations`` here: a route defined inside a
router factory annotates with local names (``Depends(analysts)``), which
FastAPI can only see when annotations are evaluated at definition time.
"""

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from channels.web import (
    accounts_commands,
    dispatch_commands,
    knowledge_commands,
    marketing_commands,
    replies_commands,
    sales_commands,
    service_commands,
    work_commands,
)
from channels.web.command_routes import COMMANDS, ROUTE_ROLES
from commands import (
    accounts,
    dispatch,
    knowledge,
    marketing,
    quality,
    replies,
    sales,
    service,
    territories,
    work,
)
from commands import email_messages as em
from commands import messages as m
from tests.conftest import store_env
from tests.support.api import Api, running_api
from tests.support.invariants import assert_no_duplicate_source_keys
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies

# Command messages and route tables of the business areas (one entry each).
AREA_COMMAND_MODULES = (dispatch, service, marketing, accounts, quality, sales, work,
                        knowledge, replies, territories)
AREA_ROUTE_TABLES = (dispatch_commands, service_commands, marketing_commands, accounts_commands,
                     sales_commands, work_commands, knowledge_commands, replies_commands)

T = "2025-06-02T10:00:00+00:00"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    env = store_env("sqlite", tmp_path / "data")
    env["TOUCHSTREAM_MAX_BODY_BYTES"] = str(64 * 1024)
    with running_api(env) as api:
        yield api


def post(api: Api, name: str, body: dict[str, Any], role: str = "admin",
         **headers: str) -> Any:
    return api.client.post(f"/commands/{name}", json=body,
                           headers={**api.auth(role), **headers})


def register(api: Api, name: str = "Ada Lovelace", email: str | None = None) -> str:
    email = email or f"{uuid4().hex[:10]}@example.com"
    r = post(api, "register-customer", {
        "name": name, "contact_points": [{"kind": "email", "value": email}],
        "source_key": f"test:{email}"})
    assert r.status_code == 201, r.text
    return str(r.json()["customer_id"])


def stream_types(api: Api, customer_id: str) -> list[str]:
    return [type(e).__name__ for e in api.hub.stream(UUID(customer_id))]


# -- every command ------------------------------------------------------------


def test_every_command_message_has_exactly_one_route() -> None:
    # Marketing's commands are routed by its own table and by touchstream.marketing_routes
    # (the links they send are signed there); test_marketing_api checks those.
    marketing_models = {c for c, _, _ in marketing_commands.COMMANDS.values()}
    messages = {c for module in (m, *AREA_COMMAND_MODULES) if module is not marketing
                for _, c in inspect.getmembers(module, inspect.isclass)
                if issubclass(c, m.Command) and "kind" in c.model_fields
                and c.model_fields["kind"].default}
    messages.add(em.SendEmail)  # the staff reply (the email channel's own message)
    routed = [model for model, _, _ in COMMANDS.values() if model not in marketing_models]
    assert sorted(c.__name__ for c in routed) == sorted(c.__name__ for c in messages)
    assert set(ROUTE_ROLES) == set(COMMANDS)


def test_each_command_route_records_its_event(api: Api) -> None:
    ada = register(api, email="ada@example.com")
    dup = register(api, "ADA LOVELACE", email="ada.home@example.com")
    steps: list[tuple[str, dict[str, Any], str, str]] = [
        ("change-profile", {"customer_id": ada, "changes": {"title": "CTO"}}, ada,
         "ProfileChanged"),
        ("add-contact-point", {"customer_id": ada,
                               "contact": {"kind": "phone", "value": "020 7946 0018"}}, ada,
         "ContactPointAdded"),
        ("add-contact-point", {"customer_id": ada,
                               "contact": {"kind": "fax", "value": "+44 20 7946 0999"},
                               "source_key": "fax-point"}, ada, "ContactPointAdded"),
        ("remove-contact-point", {"customer_id": dup, "reason": "typo",
                                  "contact": {"kind": "email", "value": "ada.home@example.com"}},
         dup, "ContactPointRemoved"),
        ("change-lifecycle-stage", {"customer_id": ada, "to_stage": "target"}, ada,
         "LifecycleStageChanged"),
        ("add-note", {"customer_id": ada, "text": "Prefers mornings"}, ada, "NoteAdded"),
        ("assign-partner", {"customer_id": ada, "partner_id": "p-1"}, ada, "PartnerAssigned"),
        ("log-call", {"call_id": "CA1", "from_number": "+44 20 7946 0018", "queue": "support",
                      "ivr_choices": ["2"], "outcome": "answered", "duration_s": 60,
                      "occurred_at": T}, ada, "CallLogged"),
        ("record-call-step", {"call_id": "CA1", "step": "queued", "sequence": 1,
                              "from_number": "+44 20 7946 0018", "occurred_at": T}, ada,
         "CallStepRecorded"),
        ("request-callback", {"callback_id": "cb1", "number": "+44 20 7946 0018"}, ada,
         "CallbackRequested"),
        ("complete-callback", {"customer_id": ada, "callback_id": "cb1"}, ada,
         "CallbackCompleted"),
        ("record-email", {"message_id": "<m1@example.com>", "from_address": "ADA@example.com",
                          "to": ["support@example.org"], "subject": "Hi"}, ada, "EmailRecorded"),
        ("record-fax", {"fax_id": "fx1", "from_number": "+44 20 7946 0999", "pages": 2}, ada,
         "FaxRecorded"),
        ("record-visit", {"customer_id": ada, "visit_id": "v1", "visit_kind": "office",
                          "staff": "jonas", "occurred_at": T}, ada, "VisitRecorded"),
        ("record-web-form", {"form_name": "contact", "submission_id": "s1",
                             "email": "ada@example.com", "fields": {"msg": "hello"}}, ada,
         "WebFormSubmitted"),
        ("merge-customers", {"source_id": dup, "target_id": ada}, dup, "MergedInto"),
        ("unmerge-customer", {"source_id": dup}, dup, "Unmerged"),
    ]
    corrections = {"void-touchpoint", "correct-touchpoint"}  # need an event id: below
    # The business areas' routes are tested in their own files (test_accounts_api.py,
    # test_sales_routes.py, …).
    area_routes = {name for table in AREA_ROUTE_TABLES for name in table.COMMANDS}
    assert ({name for name, *_ in steps} | {"register-customer"} | corrections
            | area_routes) == set(COMMANDS)
    for name, body, customer, event in steps:
        r = post(api, name, body)
        assert r.status_code == 201, (name, r.text)
        result = r.json()
        assert result["customer_id"] == customer and not result["duplicate"]
        assert result["position"] == max(result["positions"])
        assert stream_types(api, customer)[result["versions"][-1]] == event, name
    assert "Absorbed" in stream_types(api, ada) and "Released" in stream_types(api, ada)
    ids = {type(e).__name__: str(e.event_id) for e in api.hub.stream(UUID(ada))}
    for name, body, event in [
        ("correct-touchpoint", {"customer_id": ada, "event_id": ids["VisitRecorded"],
                                "changes": {"place": "Leeds"}, "reason": "typo"},
         "TouchpointCorrected"),
        ("void-touchpoint", {"customer_id": ada, "event_id": ids["FaxRecorded"],
                             "reason": "test fax"}, "TouchpointVoided"),
    ]:
        r = post(api, name, body)
        assert r.status_code == 201, (name, r.text)
        assert stream_types(api, ada)[r.json()["versions"][-1]] == event, name


def test_actor_defaults_to_the_api_key_name(api: Api) -> None:
    ada = register(api)
    post(api, "add-note", {"customer_id": ada, "text": "x"}, role="agent")
    note = list(api.hub.stream(UUID(ada)))[-1]
    assert note.actor == "api:test-agent"  # type: ignore[attr-defined]


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field", "words"), [
    ({}, "body.call_id", "Field required"),
    ({"call_id": "c", "colour": "red"}, "body.colour", "Extra inputs"),
    ({"call_id": "c", "occurred_at": "2025-06-02T10:00:00"}, "body.occurred_at", "timezone"),
    ({"call_id": "c", "outcome": "great"}, "body.outcome", "answered"),
    ({"call_id": "c", "duration_s": -1}, "body.duration_s", "greater than or equal"),
])
def test_invalid_body_is_422_with_the_reason(api: Api, body: dict[str, Any], field: str,
                                             words: str) -> None:
    r = post(api, "log-call", body)
    assert r.status_code == 422
    assert field in r.json()["reason"] and words in r.json()["reason"]


def test_malformed_json_is_422(api: Api) -> None:
    r = api.client.post("/commands/add-note", content=b"{nope",
                        headers={**api.auth(), "Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["reason"]


def test_unparseable_phone_number_is_422_and_records_nothing(api: Api) -> None:
    before = api.hub.recorder.max_notification_id()
    r = post(api, "register-customer", {
        "name": "Bob", "contact_points": [{"kind": "phone", "value": "not a number"}]})
    assert r.status_code == 422 and "not a phone number" in r.json()["detail"]
    assert api.hub.recorder.max_notification_id() == before


# -- conflicts and missing customers ----------------------------------------


def test_contact_point_of_another_customer_is_409(api: Api) -> None:
    register(api, email="taken@example.com")
    r = post(api, "register-customer", {
        "name": "Other", "contact_points": [{"kind": "email", "value": "Taken@Example.com"}]})
    assert r.status_code == 409 and "taken@example.com" in r.json()["detail"]


def test_forbidden_lifecycle_move_is_409(api: Api) -> None:
    ada = register(api)
    assert post(api, "change-lifecycle-stage",
                {"customer_id": ada, "to_stage": "current"}).status_code == 201
    r = post(api, "change-lifecycle-stage", {"customer_id": ada, "to_stage": "prospect"})
    assert r.status_code == 409 and "current to prospect" in r.json()["detail"]


def test_merge_into_itself_is_409(api: Api) -> None:
    ada = register(api)
    r = post(api, "merge-customers", {"source_id": ada, "target_id": ada})
    assert r.status_code == 409 and "itself" in r.json()["detail"]


def test_unknown_customer_is_404(api: Api) -> None:
    r = post(api, "add-note", {"customer_id": str(uuid4()), "text": "hello"})
    assert r.status_code == 404 and "no customer" in r.json()["detail"]


def test_touchpoint_without_any_way_to_find_the_customer_is_404(api: Api) -> None:
    r = post(api, "record-visit", {"visit_id": "v9", "visit_kind": "field", "staff": "sam"})
    assert r.status_code == 404 and "customer_id" in r.json()["detail"]


def test_unknown_sender_held_for_triage_is_202(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data") | {"TOUCHSTREAM_UNKNOWN_CONTACTS": "triage"}
    with running_api(env) as api:
        body = {"call_id": "CA-unknown", "from_number": "+44 20 7946 0555"}
        first, again = post(api, "log-call", body), post(api, "log-call", body)
        assert first.status_code == 202 and first.json()["held_for_triage"] is True
        assert first.json()["customer_id"] == ""
        assert again.status_code == 202 and again.json()["duplicate"] is True
        assert len(api.hub.held_touchpoints()) == 1


# -- idempotency ------------------------------------------------------------------


def test_idempotency_key_retry_records_one_event_and_returns_the_same_result(api: Api) -> None:
    ada = register(api)
    body = {"customer_id": ada, "text": "Call back on Monday"}
    first = post(api, "add-note", body, **{"Idempotency-Key": "note-42"})
    second = post(api, "add-note", body, **{"Idempotency-Key": "note-42"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {**first.json(), "duplicate": True}
    assert stream_types(api, ada).count("NoteAdded") == 1
    third = post(api, "add-note", body, **{"Idempotency-Key": "note-43"})
    assert third.status_code == 201
    assert stream_types(api, ada).count("NoteAdded") == 2


def test_same_idempotency_key_with_another_body_is_409(api: Api) -> None:
    ada = register(api)
    post(api, "add-note", {"customer_id": ada, "text": "one"}, **{"Idempotency-Key": "k1"})
    r = post(api, "add-note", {"customer_id": ada, "text": "two"}, **{"Idempotency-Key": "k1"})
    assert r.status_code == 409 and "different body" in r.json()["detail"]
    assert stream_types(api, ada).count("NoteAdded") == 1


def test_idempotency_keys_are_scoped_to_the_api_key(api: Api) -> None:
    ada = register(api)
    body = {"customer_id": ada, "text": "same words"}
    assert post(api, "add-note", body, "agent", **{"Idempotency-Key": "k"}).status_code == 201
    assert post(api, "add-note", body, "sales", **{"Idempotency-Key": "k"}).status_code == 201


def test_natural_source_id_wins_over_the_idempotency_key(api: Api) -> None:
    register(api, email="caller@example.com")
    body = {"message_id": "<once@example.com>", "from_address": "caller@example.com"}
    a = post(api, "record-email", body, **{"Idempotency-Key": "a"})
    b = post(api, "record-email", body, **{"Idempotency-Key": "b"})
    c = post(api, "record-email", body)
    assert [a.status_code, b.status_code, c.status_code] == [201, 200, 200]
    assert stream_types(api, a.json()["customer_id"]).count("EmailRecorded") == 1
    assert_no_duplicate_source_keys(api.hub.stream(UUID(a.json()["customer_id"])))


# -- limits -------------------------------------------------------------------------


def test_body_over_the_limit_is_413_with_the_reason(api: Api) -> None:
    big = {"customer_id": str(uuid4()), "text": "x" * 70_000}
    r = api.client.post("/commands/add-note", json=big, headers=api.auth())
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"]


def test_streamed_body_without_content_length_over_the_limit_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    r = api.client.post("/commands/add-note", content=chunks(),
                        headers={**api.auth(), "Content-Type": "application/json"})
    assert r.status_code == 413 and "TOUCHSTREAM_MAX_BODY_BYTES" in r.json()["detail"]


def test_long_query_string_is_414_and_too_many_parameters_400(api: Api) -> None:
    r = api.client.post("/commands/add-note?" + "q" * 9000, json={}, headers=api.auth())
    assert r.status_code == 414 and "query string" in r.json()["detail"]
    r = api.client.get("/health?" + "&".join(f"a{i}=1" for i in range(150)))
    assert r.status_code == 400 and "query parameters" in r.json()["detail"]


# -- authentication and roles -----------------------------------------------------


@pytest.mark.parametrize("route", sorted(COMMANDS))
def test_role_matrix_for_write_routes(api: Api, route: str) -> None:
    """Admitted roles get past auth (then 422 for the empty body); others get 403."""
    admitted = set(ROUTE_ROLES[route]) | {"admin"}
    for role in ROLES:
        r = post(api, route, {}, role=role)
        if role in admitted:
            assert r.status_code == 422, (route, role, r.text)
        else:
            assert r.status_code == 403, (route, role, r.text)
            assert f"role '{role}'" in r.json()["detail"] and "admin" in r.json()["detail"]
    assert not admitted & {"analyst", "auditor"}
    # partner keys write only opportunities (of their own customers: test_sales_routes.py)
    assert "partner" not in admitted or route.endswith("opportunity") or route.startswith(
        "move-opportunity")


@pytest.mark.parametrize("route", sorted(COMMANDS))
def test_write_routes_without_a_valid_key_are_401(api: Api, route: str) -> None:
    url = f"/commands/{route}"
    missing = api.client.post(url, json={})
    assert missing.status_code == 401 and "missing API key" in missing.json()["detail"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = api.client.post(url, json={}, headers={"Authorization": "Bearer tsk_guess"})
    assert unknown.status_code == 401 and "unknown" in unknown.json()["detail"]
    assert 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]


def test_revoked_key_is_401_and_x_api_key_header_is_accepted(api: Api) -> None:
    key, token = api.keys.create("agent", name="temp")
    ada = register(api)
    body = {"customer_id": ada, "text": "hi"}
    assert api.client.post("/commands/add-note", json=body,
                           headers={"X-API-Key": token}).status_code == 201
    api.keys.revoke(key.id)
    r = api.client.post("/commands/add-note", json=body, headers={"X-API-Key": token})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_adapter_records_touchpoints_but_may_not_merge(api: Api) -> None:
    ada, dup = register(api), register(api)
    r = post(api, "record-visit", {"customer_id": ada, "visit_id": "v", "visit_kind": "office",
                                   "staff": "sam"}, role="adapter")
    assert r.status_code == 201
    r = post(api, "merge-customers", {"source_id": dup, "target_id": ada}, role="adapter")
    assert r.status_code == 403


# -- OpenAPI ----------------------------------------------------------------------------


def test_openapi_documents_every_command_with_an_example_and_its_errors(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for name in COMMANDS:
        op = spec["paths"][f"/commands/{name}"]["post"]
        content = op["requestBody"]["content"]["application/json"]
        assert content["examples"]["example"]["value"], name
        assert {"201", "401", "403", "409", "413", "422"} <= set(op["responses"]), name
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_openapi_examples_are_valid_commands(name: str) -> None:
    model, _, example = COMMANDS[name]
    model.model_validate(example)


@pytest.mark.postgres
def test_command_routes_and_keys_on_postgresql(tmp_path: Path) -> None:
    with running_api(store_env("postgres", tmp_path / "data")) as api:
        ada = register(api, email="ada@example.com")
        body = {"customer_id": ada, "text": "on PostgreSQL"}
        first = post(api, "add-note", body, "agent", **{"Idempotency-Key": "pg"})
        again = post(api, "add-note", body, "agent", **{"Idempotency-Key": "pg"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert post(api, "add-note", body, "analyst").status_code == 403
        assert stream_types(api, ada).count("NoteAdded") == 1


def test_extra_routers_use_authorize_and_services_run_for_the_apps_lifetime(
    tmp_path: Path,
) -> None:
    from fastapi import APIRouter, Depends

    from touchstream.app import AppContext
    from touchstream.auth import Principal

    calls: list[str] = []

    class Runner:
        def start(self) -> None:
            calls.append("start")

        def stop(self) -> None:
            calls.append("stop")

    def read_routes(ctx: AppContext) -> APIRouter:
        router = APIRouter()

        analysts = ctx.authorize("analyst")

        @router.get("/whoami")
        def whoami(who: Annotated[Principal, Depends(analysts)]) -> dict[str, str]:
            return {"role": who.role, "key": who.key_id}

        return router

    conf = settings_mod.load(store_env("sqlite", tmp_path / "data"))
    keys = open_key_store(conf)
    _, analyst = keys.create("analyst")
    _, agent = keys.create("agent")
    try:
        deps = Dependencies(conf, keys=keys)
        with TestClient(create_app(deps, routers=(read_routes,),
                                   services=(deps, Runner()))) as client:
            assert calls == ["start"]
            ok = client.get("/whoami", headers={"Authorization": f"Bearer {analyst}"})
            assert ok.status_code == 200 and ok.json()["role"] == "analyst"
            no = client.get("/whoami", headers={"Authorization": f"Bearer {agent}"})
            assert no.status_code == 403 and "analyst, admin" in no.json()["detail"]
        assert calls == ["start", "stop"]
    finally:
        keys.close()


# -- issue 8: scoped keys, strict dates, future dates, NUL, corrections ----------------------


def test_a_body_source_key_cannot_enter_another_keys_idempotency_namespace(api: Api) -> None:
    ada = register(api)
    agent_id = next(k.id for k in api.keys.list_keys() if k.name == "test-agent")
    body = {"customer_id": ada, "text": "agent's note"}
    first = post(api, "add-note", body, "agent", **{"Idempotency-Key": "k1"})
    assert first.status_code == 201
    # Sales spells the agent's scoped key to read (or pre-empt) the agent's result: refused.
    stolen = post(api, "add-note", {**body, "source_key": f"http:{agent_id}:k1"}, "sales")
    assert stolen.status_code == 422 and "http:" in stolen.json()["detail"]
    preempt = post(api, "add-note", {**body, "source_key": f"http:{agent_id}:k2"}, "sales")
    assert preempt.status_code == 422
    later = post(api, "add-note", body, "agent", **{"Idempotency-Key": "k2"})
    assert later.status_code == 201 and not later.json()["duplicate"]
    assert stream_types(api, ada).count("NoteAdded") == 2


def test_a_body_source_key_cannot_pre_empt_the_prospect_of_an_unknown_sender(api: Api) -> None:
    trap = post(api, "register-customer", {"name": "Mallory",
                                           "source_key": "prospect:email:eve@example.com"})
    assert trap.status_code == 422 and "prospect:" in trap.json()["detail"]
    r = post(api, "record-email", {"message_id": "<e1@example.com>",
                                   "from_address": "eve@example.com"})
    assert r.status_code == 201
    assert api.hub.customer(UUID(r.json()["customer_id"])).name == "eve@example.com"


@pytest.mark.parametrize("value", [0, 1700000000, "1700000000", "2025-06-02T10:00:00",
                                   "2025-06-02"])
def test_occurred_at_that_is_not_rfc3339_with_an_offset_is_422(api: Api, value: object) -> None:
    ada = register(api)
    r = post(api, "log-call", {"customer_id": ada, "call_id": "c-epoch", "occurred_at": value})
    assert r.status_code == 422 and "body.occurred_at" in r.json()["reason"]
    assert "CallLogged" not in stream_types(api, ada)


def test_a_touchpoint_dated_far_ahead_is_422_and_a_mistake_can_be_voided(api: Api) -> None:
    ada = register(api)
    r = post(api, "log-call", {"customer_id": ada, "call_id": "c-2099",
                               "occurred_at": "2099-01-01T00:00:00Z"})
    assert r.status_code == 422 and "ahead of the hub's clock" in r.json()["detail"]
    logged = post(api, "log-call", {"customer_id": ada, "call_id": "c-wrong", "occurred_at": T})
    event_id = logged.json()["event_ids"][0]
    body = {"customer_id": ada, "event_id": event_id, "reason": "logged on the wrong customer"}
    assert post(api, "void-touchpoint", body, "analyst").status_code == 403
    first, again = post(api, "void-touchpoint", body, "agent"), post(api, "void-touchpoint", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert post(api, "void-touchpoint", {**body, "source_key": "v2"}).status_code == 409
    unknown = post(api, "void-touchpoint", {**body, "event_id": str(uuid4())})
    assert unknown.status_code == 404
    fix = post(api, "correct-touchpoint", {"customer_id": ada, "event_id": event_id,
                                           "changes": {"summary": "x"}, "reason": "r"})
    assert fix.status_code == 409 and "voided" in fix.json()["detail"]
    assert stream_types(api, ada).count("TouchpointVoided") == 1


@pytest.mark.parametrize(("route", "body"), [
    ("add-note", {"text": "hello\u0000world"}),
    ("add-note", {"text": "ok", "source_key": "k\u0000"}),
    ("record-web-form", {"form_name": "contact", "submission_id": "s-nul",
                         "email": "ada@example.com", "fields": {"msg": "a\u0000"}}),
])
def test_nul_characters_are_422_with_the_reason_and_nothing_is_stored(
        api: Api, route: str, body: dict[str, Any]) -> None:
    ada = register(api, email="ada@example.com")
    r = post(api, route, {"customer_id": ada, **body})
    assert r.status_code == 422 and "NUL" in r.json()["reason"]
    assert stream_types(api, ada) == ["Registered", "ContactPointAdded"]
