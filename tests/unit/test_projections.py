"""Projections fed events directly: timeline, directory, summary and the engine's tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.customer import Customer
from projections import registry
from projections.directory.view import DirectoryView
from projections.engine import TRACKING, Worker, live_generation
from projections.store import ReadStore
from projections.summary.view import SummaryView
from projections.timeline.view import Cursor, TimelineFilter, TimelineView
from tests.support.readside import ListSource, Story, call_fields, email_fields, feed


@pytest.fixture
def store(tmp_path: Path) -> ReadStore:
    return ReadStore(f"sqlite:///{tmp_path / 'read.db'}")


def catch_up(store: ReadStore, source: ListSource, batch: int = 1000) -> None:
    db = store.connect()
    try:
        Worker(db, source, [(p, None) for p in registry.select(None)], batch).catch_up()  # type: ignore[arg-type]
    finally:
        db.close()


def kinds(page: object) -> list[str]:
    return [i["kind"] for i in page.items]  # type: ignore[attr-defined]


def test_timeline_is_newest_first_by_occurred_at_with_recorded_at_shown(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    late = datetime(2025, 6, 1, tzinfo=UTC)  # a visit synced late keeps its real time
    story.touch(ada, Customer.CallLogged, "phone", **call_fields("c1", "first call"))
    story.touch(ada, Customer.VisitRecorded, "visit", "outbound", at=late, visit_kind="field",
                staff="jo", place=None, purpose="repair", outcome="fixed", notes=None,
                duration_min=30)
    feed(source, ada)
    catch_up(store, source)
    page = TimelineView(store).page(str(ada.id))
    assert kinds(page) == ["call", "registered", "visit"]
    assert page.items[2]["occurred_at"].date().isoformat() == "2025-06-01"
    assert page.items[2]["recorded_at"] > page.items[2]["occurred_at"]
    assert page.items[0]["summary"] == "first call"


def test_timeline_of_target_includes_merged_history_until_unmerged(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    target, dup = story.register("Ada"), story.register("Ada L")
    story.touch(dup, Customer.EmailRecorded, "email", **email_fields("<m1>", "from the duplicate"))
    feed(source, target, dup)
    dup.merge_into(story.prov(), str(target.id))
    target.absorb(story.prov(), str(dup.id))
    feed(source, dup, target)  # log order: MergedInto on the source, then Absorbed
    catch_up(store, source)
    view = TimelineView(store)
    found = view.resolve(str(dup.id))
    assert found is not None and found.root == str(target.id)
    subjects = [i["subject"] for i in view.page(str(target.id)).items]
    assert "from the duplicate" in subjects

    dup.unmerge(story.prov())
    target.release(story.prov(), str(dup.id))
    feed(source, dup, target)
    catch_up(store, source)
    assert "from the duplicate" not in [i["subject"] for i in view.page(str(target.id)).items]
    assert view.resolve(str(dup.id)).root == str(dup.id)  # type: ignore[union-attr]


def test_timeline_filters_search_and_internal_notes(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    story.touch(ada, Customer.EmailRecorded, "email", **email_fields("<a>", "Invoice overdue",
                                                                     "please pay the invoice"))
    story.touch(ada, Customer.CallLogged, "phone", "outbound", **call_fields("c1", "chased"))
    ada.add_note(story.prov(), "thinks we overcharge", "internal")
    ada.add_note(story.prov(), "prefers mornings", "shared")
    feed(source, ada)
    catch_up(store, source)
    view, root = TimelineView(store), str(ada.id)
    assert kinds(view.page(root, where=TimelineFilter(channels=("phone",)))) == ["call"]
    assert kinds(view.page(root, where=TimelineFilter(directions=("outbound",)))) == ["call"]
    assert kinds(view.page(root, where=TimelineFilter(text="invoi"))) == ["email"]
    assert kinds(view.page(root, where=TimelineFilter(kinds=("note",)))) == ["note", "note"]
    hidden = view.page(root, where=TimelineFilter(kinds=("note",), include_internal=False))
    assert [i["summary"] for i in hidden.items] == ["prefers mornings"]
    since = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    ranged = view.page(root, where=TimelineFilter(since_us=int(since.timestamp() * 1e6),
                                                  until_us=int((since + timedelta(minutes=2))
                                                               .timestamp() * 1e6)))
    assert kinds(ranged) == ["call", "email"]


def test_timeline_detail_has_the_full_body(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    body = "long body " * 100
    story.touch(ada, Customer.EmailRecorded, "email", **email_fields("<a>", "Hi", body))
    feed(source, ada)
    catch_up(store, source)
    view = TimelineView(store)
    entry = view.page(str(ada.id)).items[0]
    assert entry["has_body"] and len(entry["summary"] or "") <= 240
    detail = view.detail(entry["event_id"])
    assert detail is not None and detail.data["body_text"] == body


def test_cursor_pages_cover_everything_once(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    same = datetime(2026, 2, 1, tzinfo=UTC)
    for i in range(23):  # ties on occurred_at are ordered by position
        story.touch(ada, Customer.CallLogged, "phone", at=same if i % 2 else None,
                    **call_fields(f"c{i}"))
    feed(source, ada)
    catch_up(store, source, batch=7)
    view = TimelineView(store)
    seen, cursor = [], None
    while True:
        page = view.page(str(ada.id), limit=5, cursor=cursor)
        seen += [i["position"] for i in page.items]
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor)
    assert sorted(seen) == [p for p, _ in source.items]
    assert len(seen) == len(set(seen))


def test_directory_finds_by_name_company_email_and_number_prefix(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada Lovelace", "Analytical Engines")
    ada.add_contact_point(story.prov(), "email", "ada@example.com", None)
    ada.add_contact_point(story.prov(), "phone", "+442079460018", "work")
    bob = story.register("Bob Babbage")
    feed(source, ada, bob)
    catch_up(store, source)
    view = DirectoryView(store)
    ada_id = str(ada.id)
    for query in ("lovel", "Ada Lov", "analyt", "ada@exa", "example.com", "+44 20 7946",
                  "020 7946 0018"):
        assert [e["customer_id"] for e in view.search(query)] == [ada_id], query
    assert view.search("zzz") == []
    found = view.lookup(("phone", "fax"), "+442079460018")
    assert [e["customer_id"] for e in found] == [ada_id]
    assert found[0]["contact_points"][1]["label"] == "work"


def test_directory_lookup_follows_merges_and_forgets_removed_points(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    target, dup = story.register("Ada"), story.register("Ada (old)")
    dup.add_contact_point(story.prov(), "email", "old@example.com", None)
    target.add_contact_point(story.prov(), "email", "gone@example.com", None)
    feed(source, target, dup)
    dup.merge_into(story.prov(), str(target.id))
    target.absorb(story.prov(), str(dup.id))
    target.remove_contact_point(story.prov(), "email", "gone@example.com", "bounced")
    target.assign_partner(story.prov(), "p1")
    feed(source, dup, target)
    catch_up(store, source)
    view = DirectoryView(store)
    found = view.lookup(("email",), "old@example.com")
    assert [e["customer_id"] for e in found] == [str(target.id)]
    assert found[0]["partner_id"] == "p1" and found[0]["merged_from"] == [str(dup.id)]
    assert view.lookup(("email",), "gone@example.com") == []
    assert [e["customer_id"] for e in view.search("ada")] == [str(target.id)]
    assert view.search("ada", partner_id="p2", partner_only=True) == []


def test_summary_counts_touchpoints_not_events_and_tracks_open_callbacks(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    for step in ("offered", "answered", "ended"):  # one call reported in three steps
        story.touch(ada, Customer.CallStepRecorded, "phone", call_id="k1", step=step,
                    sequence=0, from_number=None, to_number=None, queue=None, agent=None,
                    details={})
    story.touch(ada, Customer.CallLogged, "phone", **call_fields("k1"))
    story.touch(ada, Customer.EmailRecorded, "email", **email_fields("<1>", "a"))
    for cb in ("cb1", "cb2"):
        story.touch(ada, Customer.CallbackRequested, "phone", callback_id=cb, number=None,
                    requested_for=None, reason="billing")
    story.touch(ada, Customer.CallbackCompleted, "phone", "outbound", callback_id="cb1",
                outcome="reached", call_id=None)
    ada.change_lifecycle_stage(story.prov(), "current", "signed")
    ada.change_profile(story.prov(), {"city": "London"})
    feed(source, ada)
    catch_up(store, source, batch=3)
    s = SummaryView(store).summary(str(ada.id))
    assert s is not None
    assert s["channels"]["phone"]["touches"] == 3  # call k1, callbacks cb1 and cb2
    assert s["channels"]["email"]["touches"] == 1
    assert [o["callback_id"] for o in s["open_items"]] == ["cb2"]
    assert s["lifecycle_stage"] == "current" and s["profile"]["city"] == "London"
    assert s["last_contact_at"] == s["channels"]["phone"]["last_contact_at"]


def test_summary_of_a_merge_root_adds_up_the_group(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    target, dup = story.register("Ada"), story.register("Ada 2")
    story.touch(target, Customer.EmailRecorded, "email", **email_fields("<1>", "a"))
    story.touch(dup, Customer.EmailRecorded, "email", **email_fields("<2>", "b"))
    feed(source, target, dup)
    dup.merge_into(story.prov(), str(target.id))
    target.absorb(story.prov(), str(dup.id))
    feed(source, dup, target)
    catch_up(store, source)
    s = SummaryView(store).summary(str(target.id))
    assert s is not None and s["channels"]["email"]["touches"] == 2
    assert s["merged_from"] == [str(dup.id)]


def test_a_failed_batch_leaves_rows_and_position_untouched(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    for i in range(10):
        story.touch(ada, Customer.CallLogged, "phone", **call_fields(f"c{i}"))
    feed(source, ada)
    catch_up(store, source, batch=4)
    db = store.connect()
    gen = live_generation(db, "timeline")
    assert gen is not None and gen.position == source.head()

    class Breaking(ListSource):
        def decode(self, notes):  # type: ignore[no-untyped-def]
            items = super().decode(notes)
            return [*items[:-1], (items[-1][0], "not an event")]

    story.touch(ada, Customer.CallLogged, "phone", **call_fields("c99"))
    feed(source, ada)
    broken = Breaking(source.items)
    worker = Worker(db, broken, [(registry.get("timeline"), None)])  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        worker.step()
    assert live_generation(db, "timeline").position == gen.position  # type: ignore[union-attr]
    rows = db.scalar("SELECT COUNT(*) FROM timeline_g1_entry")
    assert rows == 11
    db.close()


def test_two_workers_on_one_generation_never_apply_an_event_twice(store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    for i in range(50):
        story.touch(ada, Customer.CallLogged, "phone", **call_fields(f"c{i}"))
    feed(source, ada)
    dbs = [store.connect(), store.connect()]
    workers = [Worker(db, source, [(p, None) for p in registry.select(None)], batch=7)  # type: ignore[arg-type]
               for db in dbs]
    for _ in range(20):  # interleaved, each reading the position the other left
        for w in workers:
            w.step()
    s = SummaryView(store).summary(str(ada.id))
    assert s is not None and s["channels"]["phone"]["touches"] == 50 and s["events"] == 51
    assert dbs[0].scalar(f"SELECT COUNT(*) FROM {TRACKING}") == len(registry.PROJECTIONS)
    for db in dbs:
        db.close()


def test_reads_keep_answering_while_a_rebuild_swaps_generations(store: ReadStore) -> None:
    import threading

    from replays.rebuild import rebuild

    story, source = Story(), ListSource()
    ada = story.register("Ada")
    for i in range(1500):
        story.touch(ada, Customer.CallLogged, "phone", **call_fields(f"c{i}", f"call {i}"))
    feed(source, ada)
    catch_up(store, source)
    view = TimelineView(store)
    expected = [i["position"] for i in view.page(str(ada.id), limit=20).items]
    results: list[object] = []
    done = threading.Event()

    def rebuild_all() -> None:
        try:
            results.extend(rebuild(store, source, registry.select(None), batch=50))  # type: ignore[arg-type]
        finally:
            done.set()

    worker = threading.Thread(target=rebuild_all)
    worker.start()
    reads = 0
    while not done.is_set() or reads < 5:
        assert [i["position"] for i in view.page(str(ada.id), limit=20).items] == expected
        reads += 1
    worker.join()
    assert len(results) == len(registry.PROJECTIONS) and all(r.swapped and r.comparison.equal for r in results)  # type: ignore[attr-defined]
    db = store.connect()
    assert live_generation(db, "timeline").generation == 2  # type: ignore[union-attr]
    db.close()
    assert [i["position"] for i in view.page(str(ada.id), limit=20).items] == expected
