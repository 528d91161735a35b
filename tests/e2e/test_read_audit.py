"""The read audit over HTTP: one durable access record per read, chained, sealed, listed.

The recording itself is tested on a route shaped like the read routes
(``/customers/{customer_id}/…``, admitted roles, the ``access_recorded``
dependency); the served app (``touchstream.serve.build_app`` on the bootstrap's
dependencies) is then tested route by route: the timeline as every role, the
summary, an event, a body, a lookup and a screen-pop hit.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from projections import registry
from projections.engine import Worker
from projections.store import ReadStore
from read_api.dependencies import TIMELINE_ROLES
from replays.audit import access as access_log
from replays.audit.verify import verify_log
from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.demo import seed_demo
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.audit_routes import access_log_routes, access_recorded
from touchstream.audit_wiring import access_recorder, open_audit
from touchstream.bootstrap import Dependencies
from touchstream.serve import build_app

ROOT = Path(__file__).resolve().parents[2]
READERS = [r for r in ROLES if r != "adapter"]


@dataclass
class World:
    client: TestClient
    settings: settings_mod.Settings
    tokens: dict[str, tuple[str, str]]  # role -> (key id, token)
    served: list[str]


def _reader_routes(recorder: Any, served: list[str]) -> Any:
    def factory(context: Any) -> APIRouter:
        router = APIRouter()
        readers = context.authorize(*READERS)

        @router.get("/customers/{customer_id}/card",
                    dependencies=[Depends(access_recorded(recorder, readers))])
        def card(customer_id: str) -> dict[str, str]:
            served.append(customer_id)
            return {"customer_id": customer_id}

        return router
    return factory


def _world(tmp_path: Path, kind: str, recorder: Any = None) -> Iterator[World]:
    env = store_env(kind, tmp_path / "data")
    settings = settings_mod.load(env)
    keys = open_key_store(settings)
    tokens = {}
    for role in READERS:
        key, token = keys.create(role, partner_id="p-1" if role == "partner" else None)
        tokens[role] = (key.id, token)
    keys.close()
    served: list[str] = []
    recorder = recorder or access_recorder(settings)
    deps = Dependencies(settings)  # closed by the app at shutdown (a service)
    app = create_app(deps, routers=[_reader_routes(recorder, served), access_log_routes],
                     services=[deps])
    with TestClient(app) as client:
        yield World(client, settings, tokens, served)


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, request.param)


def _get(world: World, role: str, path: str, **headers: str) -> Any:
    return world.client.get(path, headers={"Authorization": f"Bearer {world.tokens[role][1]}",
                                           **headers})


def _records(world: World) -> list[access_log.AccessRecord]:
    db = ReadStore(world.settings.read_store).connect()
    try:
        access_log.ensure_schema(db)
        return access_log.records(db)
    finally:
        db.close()


def test_each_read_as_each_role_records_exactly_one_access(world: World) -> None:
    customer = str(uuid4())
    for role in READERS:
        done = _get(world, role, f"/customers/{customer}/card", **{"X-Request-ID": f"r-{role}"})
        assert done.status_code == 200, done.text
    found = _records(world)
    assert [(r.entry.role, r.entry.key_id, r.entry.request_id) for r in found] == [
        (role, world.tokens[role][0], f"r-{role}") for role in READERS]
    assert {r.entry.route for r in found} == {"GET /customers/{customer_id}/card"}
    assert {r.entry.customer_id for r in found} == {customer}
    assert all(r.entry.client for r in found)
    assert [r.seq for r in found] == list(range(1, len(READERS) + 1))


def test_a_refused_request_records_nothing(world: World) -> None:
    done = world.client.get(f"/customers/{uuid4()}/card")
    assert done.status_code == 401
    assert _records(world) == []


def test_concurrent_reads_are_group_committed_into_one_unbroken_chain(world: World) -> None:
    customers = [str(uuid4()) for _ in range(24)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda c: _get(world, "agent", f"/customers/{c}/card")
                              .status_code, customers))
    assert codes == [200] * 24
    found = _records(world)
    assert sorted(r.entry.customer_id for r in found) == sorted(customers)
    db = ReadStore(world.settings.read_store).connect()
    try:
        assert access_log.verify_chain(db) == []
        db.execute("UPDATE audit_access SET role = ? WHERE seq = ?", ("admin", 5))
        assert access_log.verify_chain(db) == [("access record 5 was altered or its "
                                               "predecessor removed")]
    finally:
        db.close()


def test_the_access_log_route_lists_reads_of_a_customer_for_auditors_only(world: World) -> None:
    customer, other = str(uuid4()), str(uuid4())
    _get(world, "partner", f"/customers/{customer}/card")
    _get(world, "sales", f"/customers/{other}/card")
    _get(world, "agent", f"/customers/{customer}/card")
    done = _get(world, "auditor", f"/customers/{customer}/access-log")
    assert done.status_code == 200, done.text
    assert [r["role"] for r in done.json()] == ["partner", "agent"]
    officer = _get(world, "privacy", f"/customers/{customer}/access-log")
    assert officer.status_code == 200 and officer.json() == done.json()
    assert _get(world, "agent", f"/customers/{customer}/access-log").status_code == 403
    later = _get(world, "auditor", f"/customers/{customer}/access-log",
                 ).json()[-1]["at"]
    since = world.client.get(f"/customers/{customer}/access-log", params={"since": later},
                             headers={"Authorization": f"Bearer {world.tokens['admin'][1]}"})
    assert [r["role"] for r in since.json()] == ["agent"]


def test_access_records_are_sealed_and_a_changed_record_is_found(world: World) -> None:
    for _ in range(5):
        _get(world, "agent", f"/customers/{uuid4()}/card")
    with open_audit(world.settings, access=True) as audit:
        seal = audit.seal()
        assert seal.tree_size == 5
        audit.db.execute("UPDATE audit_access SET client = ? WHERE seq = ?", ("10.9.9.9", 3))
        report = verify_log(audit.seals, audit.log, audit.key().public_key)
    assert [(f.kind, f.position) for f in report.findings if f.position] == [("changed", 3)]


def test_a_read_that_cannot_be_recorded_is_refused_and_not_served(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    broken = access_log.AccessRecorder(ReadStore(f"sqlite:///{blocker / 'read.db'}"))
    for world in _world(tmp_path, "sqlite", recorder=broken):
        done = _get(world, "agent", f"/customers/{uuid4()}/card")
        assert done.status_code == 503
        assert "access log" in done.json()["detail"]
        assert world.served == []


def test_the_cli_lists_reads_by_customer_and_by_key(world: World) -> None:
    customer = str(uuid4())
    _get(world, "agent", f"/customers/{customer}/card")
    _get(world, "sales", f"/customers/{customer}/card")
    env = {**os.environ, "TOUCHSTREAM_DATA": str(world.settings.data_dir),
           "TOUCHSTREAM_EVENT_STORE": world.settings.event_store,
           "TOUCHSTREAM_READ_STORE": world.settings.read_store}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["audit", *args], env)

    done = cli("access", "--customer", customer, "--json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["role"] for line in done.stdout.splitlines()] == ["agent", "sales"]
    done = cli("access", "--key", world.tokens["sales"][0])
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1
    assert "sales" in done.stdout and customer in done.stdout
    done = cli("access", "--customer", "nobody")
    assert done.returncode == 2 and "not a customer id" in done.stderr


# --- the served read routes ------------------------------------------------------------


@dataclass
class Served:
    client: TestClient
    settings: settings_mod.Settings
    tokens: dict[str, tuple[str, str]]  # role -> (key id, token); partner: p-north
    ids: dict[str, str]


def _served(tmp_path: Path, kind: str) -> Iterator[Served]:
    settings = settings_mod.load(store_env(kind, tmp_path / "data"))
    deps = Dependencies(settings)
    ids = seed_demo(deps.hub)
    db = deps.read_store.connect()
    try:
        Worker(db, deps.event_source(), [(p, None) for p in registry.select(None)]).catch_up()
    finally:
        db.close()
    tokens = {}
    for role in ROLES:
        key, token = deps.keys.create(role, partner_id="p-north" if role == "partner" else None)
        tokens[role] = (key.id, token)
    with TestClient(build_app(deps, projections=False)) as client:
        yield Served(client, settings, tokens, ids)


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    yield from _served(tmp_path, request.param)


@pytest.fixture
def served_sqlite(tmp_path: Path) -> Iterator[Served]:
    yield from _served(tmp_path, "sqlite")


def _read(served: Served, role: str, path: str, **params: str) -> Any:
    return served.client.get(path, params=params, headers={
        "Authorization": f"Bearer {served.tokens[role][1]}", "X-Request-ID": f"{role}-{path}"})


def _recorded(settings: settings_mod.Settings) -> list[tuple[str, str, str]]:
    db = ReadStore(settings.read_store).connect()
    try:
        access_log.ensure_schema(db)
        return [(r.entry.role, r.entry.route, r.entry.customer_id)
                for r in access_log.records(db)]
    finally:
        db.close()


def test_reading_a_timeline_as_each_role_records_exactly_one_access_per_request(
        served: Served) -> None:
    bob = served.ids["bob"]  # assigned to partner p-north
    path = f"/customers/{bob}/timeline"
    readers = [*TIMELINE_ROLES, "admin"]
    for role in readers:
        for _ in range(2):
            done = _read(served, role, path, limit="5")
            assert done.status_code == 200, (role, done.text)
            assert done.json()["items"]
    db = ReadStore(served.settings.read_store).connect()
    try:
        found = access_log.records(db)
        assert access_log.verify_chain(db) == []
    finally:
        db.close()
    assert [(r.entry.role, r.entry.key_id, r.entry.request_id) for r in found] == [
        (role, served.tokens[role][0], f"{role}-{path}") for role in readers for _ in range(2)]
    assert {(r.entry.route, r.entry.customer_id) for r in found} == {
        ("GET /customers/{customer_id}/timeline", bob)}
    for role in ("marketing", "analyst", "adapter"):  # not admitted: refused, nothing recorded
        assert _read(served, role, path).status_code == 403
    assert _read(served, "agent", "/customers/not-a-uuid/timeline").status_code == 422
    assert len(_recorded(served.settings)) == 2 * len(readers)


def test_every_read_of_a_customer_is_recorded_as_that_customer(served_sqlite: Served) -> None:
    served, ids = served_sqlite, served_sqlite.ids
    ada, ada2, bob = ids["ada"], ids["ada2"], ids["bob"]
    items = _read(served, "agent", f"/customers/{ada}/timeline", limit="200").json()["items"]
    email = next(i["event_id"] for i in items if i["kind"] == "email" and i["has_body"])
    old = next(i for i in items if i["customer_id"] == ada2)["event_id"]  # merged-in history
    reads = [
        ("agent", f"/customers/{bob}/summary", {}),
        ("agent", f"/events/{email}", {}),
        ("service", f"/events/{email}/body", {}),
        ("sales", f"/events/{old}", {}),
        ("dispatcher", "/customers/lookup", {"phone": "020 7946 0019"}),
        ("agent", "/screen-pop", {"number": "+44 20 7946 0018"}),
        ("agent", f"/customers/{ada2}/timeline", {}),  # a merged-away id: and its root
    ]
    for role, path, params in reads:
        done = _read(served, role, path, **params)
        assert done.status_code == 200, (path, done.text)
    assert _recorded(served.settings)[1:] == [
        ("agent", "GET /customers/{customer_id}/summary", bob),
        ("agent", "GET /events/{event_id}", ada),
        ("service", "GET /events/{event_id}/body", ada),
        ("sales", "GET /events/{event_id}", ada),
        ("dispatcher", "GET /customers/lookup", bob),
        ("agent", "GET /screen-pop", ada),
        ("agent", "GET /customers/{customer_id}/timeline", ada2),
        ("agent", "GET /customers/{customer_id}/timeline", ada),
    ]
    before = _recorded(served.settings)
    nothing_shown = [
        ("agent", "/customers/search", {"q": "lov"}),  # a directory page: not a read of one
        ("agent", "/screen-pop", {"number": "+44 20 7946 0999"}),  # unknown caller
        ("agent", "/customers/lookup", {"email": "nobody@example.com"}),  # 404
        ("partner", f"/events/{email}", {}),  # Ada is not p-north's: 404
        ("analyst", "/projections/status", {}),
    ]
    for role, path, params in nothing_shown:
        assert _read(served, role, path, **params).status_code in (200, 404), path
    assert _recorded(served.settings) == before


def test_a_read_route_answers_503_and_shows_nothing_when_the_access_log_refuses(
        served_sqlite: Served) -> None:
    served, bob = served_sqlite, served_sqlite.ids["bob"]
    event = _read(served, "agent", f"/customers/{bob}/timeline").json()["items"][0]["event_id"]
    db = ReadStore(served.settings.read_store).connect()
    try:
        db.execute("CREATE TRIGGER audit.audit_down BEFORE INSERT ON audit_access "
                   "BEGIN SELECT RAISE(ABORT, 'audit store down'); END")
    finally:
        db.close()
    for path, params in ((f"/customers/{bob}/timeline", {}), (f"/customers/{bob}/summary", {}),
                         (f"/events/{event}", {}), ("/screen-pop", {"number": "020 7946 0019"})):
        done = _read(served, "agent", path, **params)
        assert done.status_code == 503, (path, done.text)
        assert done.json()["error"] == "unavailable" and "access log" in done.json()["reason"]
        assert bob not in done.text
