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
from read_api import routes
from read_api.routes import ReadViews, read_router
from tests.support.demo import seed_demo
from tests.support.hubs import make_hub
from tests.support.readside import ROLES, TestAuthorizer
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies


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
    app.include_router(read_router(
        ReadViews.on(store), TestAuthorizer(),
        normalise_phone=lambda raw: normalise_number(raw, "GB"),
        normalise_email=normalise_email,
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
        assert answer.json()["detail"].replace(ada, "X") == gone.json()["detail"].replace(
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
    assert behind.status_code == 503 and "behind" in behind.json()["detail"]
    assert behind.headers["Retry-After"] == "1"
    future = get(client, path, "agent", min_position=done.position + 1000)
    assert future.status_code == 409 and "never recorded" in future.json()["detail"]
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
               since="2026-01-01T00:00:00").status_code == 400
    assert get(client, f"/customers/{ada}/timeline", "agent",
               channel=[str(i) for i in range(11)]).status_code == 400
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
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "bogus"]
    not_a_number = get(client, path, "agent", limit="x")
    assert not_a_number.status_code == 422
    assert not_a_number.json()["detail"][0]["loc"] == ["query", "limit"]
    documented = client.get("/openapi.json").json()["paths"][
        "/customers/{customer_id}/timeline"]["get"]["parameters"]
    assert [p["name"] for p in documented if p["in"] == "path"] == ["customer_id"]
    assert [p["name"] for p in documented if p["in"] == "query"] == [
        "limit", "cursor", "channel", "direction", "kind", "since", "until", "q", "min_position"]
    limit = next(p for p in documented if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 200 and limit["schema"]["default"] == 50
