"""The read models over the real write model, on SQLite and on PostgreSQL alike, and on
EventStoreDB events with the read models in PostgreSQL when EVENTSTOREDB_URI is set
(there the live runner follows ``$all`` through a catch-up subscription)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID

import pytest

from commands import messages as m
from commands.hub import Hub
from projections import registry
from projections.directory.view import DirectoryView
from projections.engine import EventSource, Worker, live_generation
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from projections.summary.view import SummaryView
from projections.timeline.view import Cursor, TimelineFilter, TimelineView
from replays.rebuild import rebuild
from tests.support.demo import T0, random_extra, seed_demo
from tests.support.logwindow import LogSince
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies, event_source_of


@pytest.fixture(params=["sqlite", "postgres", "kurrentdb"])
def read_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each store kind (PostgreSQL and EventStoreDB skipped where none is reachable)."""
    return dict(request.getfixturevalue(f"{request.param}_env"))


_FLOORS: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _log_floor(hub: Hub) -> Iterator[None]:
    """Where the log stood before the test wrote (non-zero only on a shared EventStoreDB)."""
    _FLOORS[id(hub)] = int(hub.recorder.max_notification_id() or 0)
    yield
    _FLOORS.pop(id(hub), None)


def event_source(read_env: dict[str, str], hub: Hub) -> EventSource:
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    floor = _FLOORS.get(id(hub), 0)
    return LogSince(source, floor) if floor else source


def catch_up(read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    try:
        source = event_source(read_env, hub)
        Worker(db, source, [(p, None) for p in registry.select(None)], batch=25).catch_up()
    finally:
        db.close()


def test_demo_book_reads_the_same_on_every_store(read_env: dict[str, str], hub: Hub,
                                                 store: ReadStore) -> None:
    ids = seed_demo(hub)
    catch_up(read_env, hub, store)
    timeline, directory, summary = TimelineView(store), DirectoryView(store), SummaryView(store)

    page = timeline.page(ids["ada"], limit=200)
    subjects = {i["subject"] for i in page.items}
    assert {"Invoice question", "Old address"} <= subjects  # merged-in history included
    assert page.items == sorted(page.items, key=lambda i: (i["occurred_at"], i["position"]),
                                reverse=True)
    assert timeline.resolve(ids["ada2"]).root == ids["ada"]  # type: ignore[union-attr]
    assert [i["kind"] for i in timeline.page(ids["ada"], where=_text("invoice")).items]
    # The route's one-statement read (PostgreSQL) shows what resolve + page show.
    for asked, where in ((ids["ada2"], None), (ids["ada"], _text("invoice")), (ids["bob"], None)):
        _assert_resolved_pages_match(timeline, asked, where)
    assert timeline.resolved_page("00000000-0000-4000-8000-000000000000") is None

    assert [e["customer_id"] for e in directory.search("lovel")] == [ids["ada"]]
    assert [e["customer_id"] for e in directory.lookup(("email",), "ada.l@example.org")] == [
        ids["ada"]]
    assert [e["customer_id"] for e in directory.lookup(("phone", "fax"), "+14155550101")] == [
        ids["cy"]]
    assert directory.lookup(("email",), "bob@example.com")[0]["partner_id"] == "p-north"

    s = summary.summary(ids["ada"])
    assert s is not None
    assert s["channels"]["phone"]["touches"] == 6 and s["channels"]["email"]["touches"] == 2
    assert s["lifecycle_stage"] == "current" and s["notes"] == {"shared": 1, "internal": 1}
    cy = summary.summary(ids["cy"])
    assert cy is not None and [o["callback_id"] for o in cy["open_items"]] == ["demo-cb1"]

    hub.execute(m.UnmergeCustomer(source_id=ids["ada2"]))  # type: ignore[arg-type]
    catch_up(read_env, hub, store)
    assert "Old address" not in {i["subject"] for i in timeline.page(ids["ada"], limit=200).items}
    assert summary.summary(ids["ada"])["channels"]["email"]["touches"] == 1  # type: ignore[index]


def test_voids_and_corrections_are_honoured_and_a_rebuild_equals_live(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    ids = seed_demo(hub)
    random_extra(hub, ids, 40)
    catch_up(read_env, hub, store)
    summary, timeline = SummaryView(store), TimelineView(store)
    before = summary.summary(ids["bob"])
    assert before is not None
    soon = datetime.now(UTC) + timedelta(hours=12)  # within the skew, yet a mistake
    bad = hub.execute(m.LogCall(customer_id=ids["bob"], call_id="c-soon",  # type: ignore[arg-type]
                                occurred_at=soon))
    catch_up(read_env, hub, store)
    assert summary.summary(ids["bob"])["last_contact_at"] == soon.isoformat()  # type: ignore[index]
    hub.execute(m.VoidTouchpoint(customer_id=UUID(ids["bob"]), event_id=UUID(bad.event_ids[0]),
                                 reason="tablet clock"))
    catch_up(read_env, hub, store)
    after = summary.summary(ids["bob"])
    assert after is not None and after["channels"] == before["channels"]
    assert after["last_contact_at"] == before["last_contact_at"]
    email = next(i for i in timeline.page(ids["ada"], limit=200).items if i["kind"] == "email")
    hub.execute(m.CorrectTouchpoint(  # type: ignore[arg-type]
        customer_id=ids["ada"], event_id=email["event_id"],
        corrected_occurred_at=T0 - timedelta(days=400), changes={"subject": "Invoice (fixed)"},
        reason="wrong date"))
    catch_up(read_env, hub, store)
    oldest = timeline.page(ids["ada"], limit=200).items[-1]
    assert (oldest["event_id"], oldest["subject"], oldest["corrected"]) == (
        email["event_id"], "Invoice (fixed)", True)
    source = event_source(read_env, hub)
    try:
        results = rebuild(store, source, registry.select(None), verify_only=True, batch=7)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def _text(q: str):  # type: ignore[no-untyped-def]
    from projections.timeline.view import TimelineFilter
    return TimelineFilter(text=q)


def test_rebuild_equals_live_and_names_a_corrupted_row(read_env: dict[str, str], hub: Hub,
                                                       store: ReadStore) -> None:
    ids = seed_demo(hub)
    random_extra(hub, ids, 120)
    catch_up(read_env, hub, store)
    settings = settings_mod.load(read_env)
    source = event_source(read_env, hub)
    # Filled by two processes, as a long log is (on SQLite the helper's read models in a
    # scratch file, copied back): equal to live, row by row. (On a shared EventStoreDB a
    # helper would read $all from its start, other tests' events included: one process.)
    parallel = {} if isinstance(source, LogSince) else {
        "workers": 2, "parallel_from": 1, "source_factory": partial(event_source_of, settings)}
    results = rebuild(store, source, registry.select(None), **parallel)  # type: ignore[arg-type]
    assert all(r.comparison.equal and r.swapped for r in results), [
        d.describe() for r in results for d in r.comparison.differences]
    assert all(r.comparison.position == hub.recorder.max_notification_id() for r in results)
    if store.path is not None:
        assert not list(store.path.parent.glob(f"{store.path.name}.fill-*"))

    db = store.connect()
    gen = live_generation(db, "summary")
    assert gen is not None
    db.execute(f"UPDATE summary_g{gen.generation}_channel SET touches=touches+1 "
               "WHERE customer_id=? AND channel='phone'", (ids["ada"],))
    db.close()
    (result,) = rebuild(store, source, [registry.get("summary")], verify_only=True)
    assert not result.comparison.equal and not result.swapped
    (diff,) = result.comparison.differences
    assert diff.table == "channel" and diff.key == {"customer_id": ids["ada"], "channel": "phone"}
    assert "touches" in diff.describe()
    db = store.connect()
    assert live_generation(db, "summary").generation == gen.generation  # type: ignore[union-attr]
    db.close()
    source.close()


def _assert_resolved_pages_match(timeline: TimelineView, asked: str,
                                 where: TimelineFilter | None) -> None:
    found = timeline.resolve(asked)
    assert found is not None
    cursor = None
    while True:  # pages of 3, so merged members' rows interleave across page boundaries
        both = timeline.resolved_page(asked, limit=3, cursor=cursor, where=where)
        assert both is not None and both[0] == found
        page = timeline.page(found.root, limit=3, cursor=cursor, where=where)
        assert both[1] == page
        if page.next_cursor is None:
            return
        cursor = Cursor.decode(page.next_cursor)


def test_pages_have_no_duplicate_or_gap_while_events_are_appended(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    ids = seed_demo(hub)
    settings = settings_mod.load(read_env)
    # The live runner: on EventStoreDB it follows a subscription, elsewhere it polls.
    probe = event_source(read_env, hub)
    assert probe.subscribes == (settings.event_store_kind == "kurrentdb")
    probe.close()
    runner = ProjectionRunner(store, lambda: event_source(read_env, hub),
                              registry.select(["timeline"]), batch=10)
    runner.start()
    stop = threading.Event()
    counter = iter(range(10**6))

    def append() -> None:
        while not stop.is_set():
            i = next(counter)
            # Old and new occurred_at alike, so appends land on every page boundary.
            hub.execute(m.LogCall(customer_id=ids["bob"], call_id=f"conc-{i}",  # type: ignore[arg-type]
                                  occurred_at=T0.replace(day=1 + i % 27)))

    writer = threading.Thread(target=append, daemon=True)
    try:
        for i in range(40):
            hub.execute(m.LogCall(customer_id=ids["bob"], call_id=f"pre-{i}",  # type: ignore[arg-type]
                                  occurred_at=T0.replace(day=1 + i % 27)))
        view = TimelineView(store)
        wanted = hub.recorder.max_notification_id()
        _wait_for(view, wanted)
        writer.start()
        seen: list[int] = []
        cursor = None
        while True:
            page = view.page(ids["bob"], limit=7, cursor=cursor)
            seen += [i["position"] for i in page.items]
            if page.next_cursor is None:
                break
            cursor = Cursor.decode(page.next_cursor)
        as_of = page.as_of
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(10)
        runner.stop()
    assert len(seen) == len(set(seen)), "a row appeared on two pages"
    db = store.connect()
    gen = live_generation(db, "timeline")
    expected = [r[0] for r in db.all(
        f"SELECT position FROM timeline_g{gen.generation}_entry "  # type: ignore[union-attr]
        "WHERE customer_id=? AND position<=?", (ids["bob"], as_of))]
    db.close()
    assert sorted(seen) == sorted(expected), "a row of the snapshot was never shown"
    assert len(expected) >= 40


def _wait_for(view: TimelineView, position: int) -> None:
    import time
    deadline = time.monotonic() + 20
    while view.position() < position:
        assert time.monotonic() < deadline, "the runner never caught up"
        time.sleep(0.01)


@pytest.mark.parametrize("read_env", ["sqlite", "kurrentdb"], indirect=True)
def test_a_runner_stopped_mid_catch_up_and_restarted_applies_each_event_once(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    """Stopped three times part-way and started again from its tracked position (on
    EventStoreDB: a new subscription each time); then equal to a rebuild."""
    ids = seed_demo(hub)
    for i in range(60):
        hub.execute(m.LogCall(customer_id=ids["bob"], call_id=f"r{i}",  # type: ignore[arg-type]
                              summary=f"call {i}", occurred_at=T0))
    source = event_source(read_env, hub)
    positions = [int(n.id) for n in source.read(0, 10_000)]
    head = positions[-1]
    projections = registry.select(["timeline", "summary"])

    def low() -> int:
        db = store.connect()
        try:
            found = [int(r[0]) for r in db.all("SELECT position FROM ts_projection WHERE live=1")]
        except Exception:  # noqa: BLE001 - the tracking table is not there yet
            return 0
        finally:
            db.close()
        return min(found) if len(found) == len(projections) else 0

    for share in (4, 2, 1):
        runner = ProjectionRunner(store, lambda: event_source(read_env, hub), projections,
                                  batch=4)
        runner.start()
        try:
            until = positions[len(positions) // share - 1] if share > 1 else head
            deadline = datetime.now(UTC) + timedelta(seconds=30)
            while low() < until:
                assert datetime.now(UTC) < deadline, "the runner never got there"
                threading.Event().wait(0.005)
        finally:
            runner.stop()
        assert runner.last_error is None and not runner.running
        if share > 1:
            assert low() < head, "finished before the stop"
    assert low() == head
    results = rebuild(store, source, projections, verify_only=True, batch=9)
    source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]
    db = store.connect()
    tgen = live_generation(db, "timeline").generation  # type: ignore[union-attr]
    calls = db.scalar(f"SELECT COUNT(*) FROM timeline_g{tgen}_entry WHERE customer_id=? "
                      "AND kind='call' AND summary LIKE 'call %'", (ids["bob"],))
    db.close()
    assert calls == 60
