"""The read API over HTTP: every route × role, partner scoping, read-your-writes, paging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from commands import messages as m
from commands.identity import normalise_email, normalise_number
from projections import registry
from projections.engine import Worker
from read_api import partner as partner_view
from read_api import routes
from read_api.routes import ReadViews, read_router
from tests.support.demo import seed_demo
from tests.support.hubs import make_hub
from tests.support.readside import ROLES, TestAuthorizer
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.http_errors import install_error_handlers


@pytest.fixture
def world(sqlite_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    settings = settings_mod.load(sqlite_env)
    hub = make_hub(sqlite_env)
    ids = seed_demo(hub)
    store = Dependencies(settings).read_store

    def catch_up() -> None:
        db = store.connect()
        Worker(db, Dependencies(settings, hub=hub).event_source(),
               [(p, None) for p in registry.select(None)]).catch_up()
        db.close()

    catch_up()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(read_router(
        ReadViews.on(store), TestAuthorizer(),
        normalise_phone=lambda raw: normalise_number(raw, "GB"),
        normalise_email=normalise_email,
        audit=None,  # the read audit has its own tests (test_read_audit)
        log_head=lambda: int(hub.recorder.max_notification_id() or 0),
        wait_s=0.3))
    with TestClient(app) as client:
        yield {"client": client, "ids": ids, "hub": hub, "catch_up": catch_up}
    hub.close()


def get(client: TestClient, path: str, token: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, params=params, headers=headers)


def event_of(client: TestClient, customer: str, kind: str) -> str:
    answer = get(client, f"/customers/{customer}/timeline", "admin", limit=200)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    return next(i["event_id"] for i in items if i["kind"] == kind)


def routes_for(ids: dict[str, str], client: TestClient) -> dict[str, tuple[str, dict[str, Any]]]:
    bob = ids["bob"]
    return {
        "timeline": (f"/customers/{bob}/timeline", {}),
        "detail": (f"/events/{event_of(client, bob, 'visit')}", {}),
        "body": (f"/events/{event_of(client, ids['ada'], 'email')}/body", {}),
        "search": ("/customers/search", {"q": "bab"}),
        "lookup": ("/customers/lookup", {"phone": "020 7946 0019"}),
        "summary": (f"/customers/{bob}/summary", {}),
        "status": ("/projections/status", {}),
    }


ADMITTED = {
    "timeline": routes.TIMELINE_ROLES, "detail": routes.TIMELINE_ROLES,
    "body": routes.TIMELINE_ROLES, "search": routes.DIRECTORY_ROLES,
    "lookup": routes.DIRECTORY_ROLES, "summary": routes.SUMMARY_ROLES,
    "status": routes.STATUS_ROLES,
}


def test_authorization_matrix_over_every_route_and_role(world: dict[str, Any]) -> None:
    client, ids = world["client"], world["ids"]
    table = routes_for(ids, client)
    for name, (path, params) in table.items():
        assert get(client, path, None, **params).status_code == 401, name
        for role in ROLES:
            token = "partner:p-north" if role == "partner" else role
            code = get(client, path, token, **params).status_code
            allowed = role == "admin" or role in ADMITTED[name]
            if not allowed:
                assert code == 403, (name, role, code)
            elif name == "body" and role == "partner":
                assert code == 404, (name, role, code)  # ada is not p-north's customer
            else:
                assert code == 200, (name, role, code)


def test_partner_cannot_reach_other_customers_by_id(world: dict[str, Any]) -> None:
    client, ids = world["client"], world["ids"]
    ada, bob = ids["ada"], ids["bob"]
    missing = "00000000-0000-4000-8000-000000000000"
    other = "partner:p-south"
    for path in (f"/customers/{ada}/timeline", f"/customers/{ada}/summary",
                 f"/customers/{bob}/timeline", f"/customers/{bob}/summary"):
        assert get(client, path, other).status_code == 404
    for token in ("partner:p-north", other):
        answer = get(client, f"/customers/{ada}/timeline", token)
        gone = get(client, f"/customers/{missing}/timeline", token)
        assert answer.status_code == gone.status_code == 404
        assert answer.json()["reason"].replace(ada, "X") == gone.json()["reason"].replace(
            missing, "X")
    ada_email = event_of(client, ada, "email")
    assert get(client, f"/events/{ada_email}", "partner:p-north").status_code == 404
    assert get(client, "/customers/search", "partner:p-north", q="lovel").json()["items"] == []
    assert get(client, "/customers/lookup", "partner:p-north",
               email="ada@example.com").status_code == 404
    assert get(client, "/customers/lookup", "partner:p-north",
               email="bob@example.com").status_code == 200


def test_partner_never_sees_internal_notes_or_staff_fields(world: dict[str, Any]) -> None:
    client, ids, hub = world["client"], world["ids"], world["hub"]
    bob = ids["bob"]
    hub.execute(m.AddNote(customer_id=bob, text="margin is thin", visibility="internal",  # type: ignore[arg-type]
                          source_key="t:n1"))
    hub.execute(m.AddNote(customer_id=bob, text="call on Fridays", visibility="shared",  # type: ignore[arg-type]
                          source_key="t:n2"))
    world["catch_up"]()
    staff = get(client, f"/customers/{bob}/timeline", "agent", kind="note").json()["items"]
    partner = get(client, f"/customers/{bob}/timeline", "partner:p-north", kind="note").json()
    assert {i["summary"] for i in staff} == {"margin is thin", "call on Fridays"}
    assert [i["summary"] for i in partner["items"]] == ["call on Fridays"]
    assert all(i["actor"] is None for i in partner["items"])
    internal = next(i["event_id"] for i in staff if i["internal"])
    assert get(client, f"/events/{internal}", "agent").status_code == 200
    assert get(client, f"/events/{internal}", "partner:p-north").status_code == 404
    summary = get(client, f"/customers/{bob}/summary", "partner:p-north").json()
    assert summary["notes"] == {"shared": 1}


def test_read_your_writes_waits_then_answers_503_or_409(world: dict[str, Any]) -> None:
    client, ids, hub = world["client"], world["ids"], world["hub"]
    done = hub.execute(m.LogCall(customer_id=ids["cy"], call_id="ryw-1",  # type: ignore[arg-type]
                                 summary="fresh"))
    path = f"/customers/{ids['cy']}/timeline"
    behind = get(client, path, "agent", min_position=done.position)
    assert behind.status_code == 503 and "behind" in behind.json()["reason"]
    assert behind.headers["Retry-After"] == "1"
    future = get(client, path, "agent", min_position=done.position + 1000)
    assert future.status_code == 409 and "never recorded" in future.json()["reason"]
    world["catch_up"]()
    ok = get(client, path, "agent", min_position=done.position)
    assert ok.status_code == 200 and ok.json()["items"][0]["summary"] == "fresh"


def test_http_paging_search_body_and_bounds(world: dict[str, Any]) -> None:
    client, ids = world["client"], world["ids"]
    ada = ids["ada"]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = get(client, f"/customers/{ada}/timeline", "agent", **params).json()
        seen += [i["position"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = get(client, f"/customers/{ada}/timeline", "agent", limit=200).json()["items"]
    assert seen == [i["position"] for i in everything]
    found = get(client, f"/customers/{ada}/timeline", "agent", q="charged").json()["items"]
    assert [i["kind"] for i in found] == ["email"]
    body = get(client, f"/events/{found[0]['event_id']}/body", "agent")
    assert body.text == "I was charged twice." and body.headers["content-type"].startswith(
        "text/plain")
    assert get(client, f"/customers/{ada}/timeline", "agent", limit=201).status_code == 422
    assert get(client, f"/customers/{ada}/timeline", "agent", cursor="!!").status_code == 400
    assert get(client, f"/customers/{ada}/timeline", "agent",
               since="2026-01-01T00:00:00").status_code == 422
    assert get(client, f"/customers/{ada}/timeline", "agent",
               channel=["email"] * 11).status_code == 422
    assert get(client, "/customers/search", "agent", q="x" * 201).status_code == 422
    assert get(client, "/customers/lookup", "agent", phone="not a number").status_code == 400
    assert get(client, "/customers/lookup", "agent").status_code == 400
    redirected = get(client, f"/customers/{ids['ada2']}/summary", "agent").json()
    assert redirected["customer_id"] == ada and redirected["merged_from"] == [ids["ada2"]]


def test_openapi_documents_every_read_route_with_examples(world: dict[str, Any]) -> None:
    spec = world["client"].get("/openapi.json").json()
    for path in ("/customers/{customer_id}/timeline", "/events/{event_id}",
                 "/events/{event_id}/body", "/customers/search", "/customers/lookup",
                 "/customers/{customer_id}/summary", "/projections/status"):
        assert path in spec["paths"], path
    page = spec["components"]["schemas"]["TimelineEntryPublic"]
    assert page.get("examples")


def test_timeline_query_string_is_validated_and_documented_like_a_query_model(
        world: dict[str, Any]) -> None:
    client, ada = world["client"], world["ids"]["ada"]
    path = f"/customers/{ada}/timeline"
    both = get(client, path, "agent", channel=["email", "phone"], limit=200).json()["items"]
    assert {i["channel"] for i in both} == {"email", "phone"}
    only = get(client, path, "agent", channel="email", limit=200).json()["items"]
    assert only and {i["channel"] for i in only} == {"email"}
    unknown = get(client, path, "agent", bogus="1")
    assert unknown.status_code == 422 and list(unknown.json()["errors"]) == ["query.bogus"]
    not_a_number = get(client, path, "agent", limit="x")
    assert not_a_number.status_code == 422
    assert list(not_a_number.json()["errors"]) == ["query.limit"]
    documented = client.get("/openapi.json").json()["paths"][
        "/customers/{customer_id}/timeline"]["get"]["parameters"]
    assert [p["name"] for p in documented if p["in"] == "path"] == ["customer_id"]
    assert [p["name"] for p in documented if p["in"] == "query"] == [
        "limit", "cursor", "channel", "direction", "kind", "since", "until", "q", "min_position"]
    limit = next(p for p in documented if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 200 and limit["schema"]["default"] == 50


def test_a_forged_or_foreign_timeline_cursor_answers_400_for_every_reader(
        world: dict[str, Any]) -> None:
    import base64
    import json

    client, ids = world["client"], world["ids"]
    bob = ids["bob"]

    def forged(*parts: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")

    path = f"/customers/{bob}/timeline"
    for token in ("agent", "partner:p-north"):
        for cursor in (forged("timeline", bob, 2**63, 1, 1), forged("timeline", bob, 1, 2**64, 1),
                       forged("timeline", bob, 1, 1, -1), forged("timeline", bob, "1", 1, 1),
                       base64.urlsafe_b64encode(b"9223372036854775808.1.1").decode()):
            answer = get(client, path, token, cursor=cursor)
            assert answer.status_code == 400, (token, cursor, answer.text)
            assert answer.json()["error"] == "bad_request"
    first = get(client, f"/customers/{ids['ada']}/timeline", "agent", limit=1).json()
    assert first["next_cursor"]
    foreign = get(client, path, "agent", cursor=first["next_cursor"])
    assert foreign.status_code == 400 and "this timeline" in foreign.json()["reason"]


def test_partner_summary_counts_hide_internal_notes(world: dict[str, Any]) -> None:
    client, ids, hub = world["client"], world["ids"], world["hub"]
    bob = ids["bob"]
    before = get(client, f"/customers/{bob}/summary", "partner:p-north").json()
    hub.execute(m.AddNote(customer_id=bob, text="margin is thin", visibility="internal",  # type: ignore[arg-type]
                          source_key="t:count-internal"))
    world["catch_up"]()
    staff = get(client, f"/customers/{bob}/summary", "agent").json()
    partner = get(client, f"/customers/{bob}/summary", "partner:p-north").json()
    assert staff["notes"]["internal"] >= 1
    assert partner["events"] == before["events"] == staff["events"] - staff["notes"]["internal"]
    assert partner["notes"] == {"shared": staff["notes"]["shared"]}
    assert set(partner) == set(staff)


def test_partner_event_payloads_show_business_fields_and_no_staff_field_by_field(
        world: dict[str, Any]) -> None:
    client, ids, hub = world["client"], world["ids"], world["hub"]
    bob = ids["bob"]
    hub.execute(m.LogCall(customer_id=bob, call_id="pf-1", agent="mia", queue="support",  # type: ignore[arg-type]
                          summary="asked about delivery", source_key="t:pf-call"))
    world["catch_up"]()
    visit = event_of(client, bob, "visit")
    call = next(i["event_id"] for i in get(client, f"/customers/{bob}/timeline", "agent",
                                           kind="call", limit=200).json()["items"]
                if i["summary"] == "asked about delivery")
    for event_id, staff_field, business in ((visit, "staff", "visit_kind"),
                                            (call, "agent", "queue")):
        staff = get(client, f"/events/{event_id}", "agent").json()
        seen = get(client, f"/events/{event_id}", "partner:p-north").json()
        assert staff["data"][staff_field] and staff_field not in seen["data"]
        assert seen["data"][business] == staff["data"][business]
        assert seen["entry"]["actor"] is None and staff["entry"]["actor"]
        for field, value in staff["data"].items():
            if field in partner_view.EVENT_FIELDS:
                assert seen["data"][field] == value, field
            else:
                assert field not in seen["data"], field
        for hidden in ("actor", "source_key", "correlation_id", "causation_id"):
            assert hidden in staff["data"] and hidden not in seen["data"]


def test_partner_sees_voids_and_corrections_without_the_staff_names_they_change(
        world: dict[str, Any]) -> None:
    client, ids, hub = world["client"], world["ids"], world["hub"]
    bob = ids["bob"]
    hub.execute(m.LogCall(customer_id=bob, call_id="pf-fix", agent="mia", queue="support",  # type: ignore[arg-type]
                          summary="wrong summary", source_key="t:pf-fix"))
    hub.execute(m.LogCall(customer_id=bob, call_id="pf-void", agent="mia", queue="support",  # type: ignore[arg-type]
                          summary="a test call", source_key="t:pf-void"))
    world["catch_up"]()
    calls = {i["summary"]: i["event_id"] for i in get(
        client, f"/customers/{bob}/timeline", "agent", kind="call", limit=200).json()["items"]}
    hub.execute(m.CorrectTouchpoint(customer_id=bob, event_id=calls["wrong summary"],  # type: ignore[arg-type]
                                    changes={"agent": "ines", "summary": "asked for a quote"},
                                    reason="logged under the wrong agent"))
    hub.execute(m.VoidTouchpoint(customer_id=bob, event_id=calls["a test call"],  # type: ignore[arg-type]
                                 reason="not a customer contact"))
    world["catch_up"]()
    staff = {i["event_id"]: i for i in get(client, f"/customers/{bob}/timeline", "agent",
                                           limit=200).json()["items"]}
    seen = {i["event_id"]: i for i in get(client, f"/customers/{bob}/timeline",
                                          "partner:p-north", limit=200).json()["items"]}
    fixed, voided = calls["wrong summary"], calls["a test call"]
    assert seen[fixed]["corrected"] and seen[fixed]["summary"] == "asked for a quote"
    assert seen[voided]["voided"] and not seen[fixed]["voided"]
    correction = next(e for e, i in staff.items() if i["kind"] == "touchpoint_corrected")
    assert "ines" in staff[correction]["summary"]
    assert seen[correction]["summary"] is None
    assert seen[correction]["subject"] == "logged under the wrong agent"
    assert get(client, f"/events/{fixed}", "agent").json()["data"]["agent"] == "ines"
    assert "agent" not in get(client, f"/events/{fixed}", "partner:p-north").json()["data"]
    full = get(client, f"/events/{correction}", "agent").json()["data"]
    shown = get(client, f"/events/{correction}", "partner:p-north").json()["data"]
    assert full["changes"] == {"agent": "ines", "summary": "asked for a quote"}
    assert shown["changes"] == {"summary": "asked for a quote"}
    assert shown["corrected_event_id"] == fixed and shown["reason"] == full["reason"]
    void = next(e for e, i in staff.items() if i["kind"] == "touchpoint_voided")
    assert get(client, f"/events/{void}", "partner:p-north").json()["data"][
        "voided_event_id"] == voided


def test_search_pages_with_a_cursor_and_refuses_a_foreign_one(world: dict[str, Any]) -> None:
    client = world["client"]
    everyone = get(client, "/customers/search", "agent", q="example", limit=100).json()
    assert everyone["next_cursor"] is None and everyone["incomplete"] is False
    assert len(everyone["items"]) >= 3
    seen, cursor = [], None
    while True:
        page = get(client, "/customers/search", "agent", q="example", limit=1,
                   **({"cursor": cursor} if cursor else {})).json()
        seen += [i["customer_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["customer_id"] for i in everyone["items"]]
    first = get(client, "/customers/search", "agent", q="example", limit=1).json()
    other = get(client, "/customers/search", "agent", q="lovel", cursor=first["next_cursor"])
    assert other.status_code == 400 and other.json()["error"] == "bad_request"


def test_unknown_filter_values_answer_422_not_an_empty_page(world: dict[str, Any]) -> None:
    client, ada = world["client"], world["ids"]["ada"]
    for name, value in (("channel", "pigeon"), ("direction", "sideways"), ("kind", "telegram")):
        answer = get(client, f"/customers/{ada}/timeline", "agent", **{name: value})
        assert answer.status_code == 422, (name, answer.text)
        assert list(answer.json()["errors"]) == [f"query.{name}.0"]
        assert answer.json()["error"] == "invalid_input" and name in answer.json()["reason"]


def test_bodies_are_plain_text_never_sniffed_even_when_html(world: dict[str, Any]) -> None:
    client, ids, hub = world["client"], world["ids"], world["hub"]
    html = "<html><script>alert(1)</script><p>Hi</p></html>"
    hub.execute(m.RecordEmail(message_id="<html-body@x>", direction="inbound",  # type: ignore[arg-type]
                              from_address="ada@example.com", to=["support@example.org"],
                              subject="html inside", body_text=html))
    world["catch_up"]()
    found = get(client, f"/customers/{ids['ada']}/timeline", "agent", q="html").json()["items"]
    body = get(client, f"/events/{found[0]['event_id']}/body", "agent")
    assert body.status_code == 200 and body.text == html
    assert body.headers["content-type"] == "text/plain; charset=utf-8"
    assert body.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in body.headers["content-security-policy"]
