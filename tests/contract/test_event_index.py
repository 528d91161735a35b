"""The event index on SQLite and PostgreSQL: every event of every stream (customers and
records) is found by its id at its log position, ``audit prove EVENT_ID`` reads it from
the index (not by decoding the log), an event past the index is still found, and a
rebuild equals the live model."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from uuid import uuid4

import pytest

from commands import dispatch as cd
from commands import messages as m
from projections import registry
from projections.engine import Worker
from projections.event_index.view import EventIndexView
from replays.rebuild import rebuild
from touchstream.audit_wiring import open_audit
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.cli import audit as audit_cli


@pytest.fixture(params=["sqlite", "postgres"])
def deps(request: pytest.FixtureRequest) -> Iterator[Dependencies]:
    found = bootstrap(dict(request.getfixturevalue(f"{request.param}_env")))
    yield found
    found.close()


def _catch_up(deps: Dependencies) -> None:
    db, source = deps.read_store.connect(), deps.event_source()
    try:
        Worker(db, source, [(registry.get("event_index"), None)], batch=2).catch_up()
    finally:
        db.close()
        source.close()


def _all_events(deps: Dependencies) -> list[tuple[int, str]]:
    source = deps.event_source()
    try:
        notes = source.read(0, 1000)
        return [(pos, str(e.event_id)) for pos, e in source.decode(
            notes, registry.get("event_index").consumes)]
    finally:
        source.close()


def test_every_event_is_found_by_its_id_and_prove_reads_the_index(
        deps: Dependencies, monkeypatch: pytest.MonkeyPatch) -> None:
    ada, tech = uuid4(), uuid4()
    deps.hub.execute(m.RegisterCustomer(customer_id=ada, name="Ada"))
    deps.hub.execute(m.AddContactPoint(customer_id=ada, contact=m.ContactPointIn(kind="email", value="ada@example.org")))
    deps.hub.execute(cd.RegisterTechnician(technician_id=tech, handle="jonas", skills=["gas"]))
    _catch_up(deps)
    events = _all_events(deps)
    assert len(events) >= 3
    view = EventIndexView(deps.read_store)
    assert [(view.position_of(eid), eid) for _, eid in events] == events

    # one more event, not indexed yet: found by reading only the log past the index
    deps.hub.execute(m.AddContactPoint(customer_id=ada, contact=m.ContactPointIn(kind="phone", value="+4930123456")))
    late_pos, late_id = _all_events(deps)[-1]
    assert view.position_of(late_id) is None
    read_from: list[int | None] = []
    real = audit_cli.read_batches
    monkeypatch.setattr(audit_cli, "read_batches",
                        lambda log, after, *a, **k: read_from.append(after) or real(
                            log, after, *a, **k))
    with open_audit(deps.settings, deps.hub) as audit:
        first_pos, first_id = events[0]
        assert audit_cli._locate(audit, SimpleNamespace(event_id=first_id)) == first_pos
        assert read_from == []  # a key read, no scan
        assert audit_cli._locate(audit, SimpleNamespace(event_id=late_id)) == late_pos
        assert read_from == [events[-1][0]]  # only the tail past the index

    source = deps.event_source()
    try:
        results = rebuild(deps.read_store, source, [registry.get("event_index")],
                          verify_only=True, batch=2)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results)
