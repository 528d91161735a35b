"""The read models over the real write model, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID

from commands import messages as m
from commands.hub import Hub
from projections import registry
from projections.directory.view import DirectoryView
from projections.engine import Worker, live_generation
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from projections.summary.view import SummaryView
from projections.timeline.view import Cursor, TimelineView
from replays.rebuild import rebuild
from tests.support.demo import T0, random_extra, seed_demo
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies, event_source_of


def catch_up(read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    try:
        source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
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
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
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
    source = Dependencies(settings, hub=hub).event_source()
    # Filled by two processes, as a long log is (on SQLite the helper's read models in a
    # scratch file, copied back): equal to live, row by row.
    results = rebuild(store, source, registry.select(None), workers=2, parallel_from=1,
                      source_factory=partial(event_source_of, settings))
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


def test_pages_have_no_duplicate_or_gap_while_events_are_appended(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    ids = seed_demo(hub)
    settings = settings_mod.load(read_env)
    runner = ProjectionRunner(store, Dependencies(settings, hub=hub).event_source,
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
