"""Projections fed events directly: timeline, directory, summary and the engine's tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.customer import Customer
from projections import registry
from projections.directory.view import DirectoryView
from projections.engine import TRACKING, Worker, live_generation
from projections.store import Db, ReadStore
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
        def decode(self, notes, consumes=(Customer.Event,)):  # type: ignore[no-untyped-def]
            items = super().decode(notes, consumes)
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


def _calls_and_two_workers(store: ReadStore, calls: int) -> tuple[Any, list[Db], list[Worker]]:
    """A customer with ``calls`` calls, and two workers (batches of 7) on their own
    connections to ``store``, every read model on one generation."""
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    for i in range(calls):
        story.touch(ada, Customer.CallLogged, "phone", **call_fields(f"c{i}"))
    feed(source, ada)
    dbs = [store.connect(), store.connect()]
    workers = [Worker(db, source, [(p, None) for p in registry.select(None)], batch=7)  # type: ignore[arg-type]
               for db in dbs]
    return ada, dbs, workers


def test_two_workers_on_one_generation_never_apply_an_event_twice(store: ReadStore) -> None:
    ada, dbs, workers = _calls_and_two_workers(store, 50)
    for _ in range(20):  # interleaved, each reading the position the other left
        for w in workers:
            w.step()
    s = SummaryView(store).summary(str(ada.id))
    assert s is not None and s["channels"]["phone"]["touches"] == 50 and s["events"] == 51
    assert dbs[0].scalar(f"SELECT COUNT(*) FROM {TRACKING}") == len(registry.PROJECTIONS)
    for db in dbs:
        db.close()


def test_a_worker_behind_another_on_its_generation_catches_up_to_it_in_one_step(
        store: ReadStore) -> None:
    # A worker reads from where its own last step left its read models (no statement to
    # ask); when another process went further meanwhile, that step applies nothing, and
    # the next one reads from where the other left them.
    ada, dbs, (behind, ahead) = _calls_and_two_workers(store, 30)
    assert behind.step() == 7
    ahead.catch_up()
    assert behind.step() == 7  # read from 7, under lock found at 31: nothing applied
    assert behind.step() == 0
    timeline = live_generation(dbs[0], "timeline")
    assert timeline is not None and (timeline.position, timeline.events) == (31, 31)
    assert dbs[0].scalar("SELECT COUNT(*) FROM timeline_g1_entry") == 31
    s = SummaryView(store).summary(str(ada.id))
    assert s is not None and s["channels"]["phone"]["touches"] == 30
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


# -- voided and corrected touchpoints (issue 8) ------------------------------------------


def _story_with_mistakes() -> tuple[Story, ListSource, Customer, dict[str, Customer.Event]]:
    """A call dated 2099 by mistake (voided), a visit with a wrong date and place (corrected)."""
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    marks: dict[str, Customer.Event] = {}
    story.touch(ada, Customer.CallLogged, "phone", **call_fields("c1", "real call"))
    story.touch(ada, Customer.CallLogged, "phone", at=datetime(2099, 1, 1, tzinfo=UTC),
                **call_fields("c2099", "year typo"))
    marks["bad"] = ada.pending_events[-1]  # type: ignore[assignment]
    story.touch(ada, Customer.VisitRecorded, "visit", "outbound", visit_kind="field", staff="jo",
                place="Leeds", purpose="repair", outcome="fixed", notes=None, duration_min=30)
    marks["visit"] = ada.pending_events[-1]  # type: ignore[assignment]
    feed(source, ada)
    history = [e for _, e in source.items]
    ada.void_touchpoint(story.prov(), marks["bad"], "year typo", history=history)
    ada.correct_touchpoint(story.prov(), marks["visit"],
                           occurred_at=datetime(2025, 12, 1, tzinfo=UTC),
                           changes={"place": "York", "notes": "boiler fixed"},
                           reason="synced late", now=story.clock, max_skew=timedelta(days=1),
                           history=[*history, *ada.pending_events])
    story.touch(ada, Customer.CallLogged, "phone", **call_fields("c3", "after the void"))
    marks["c3"] = ada.pending_events[-1]  # type: ignore[assignment]
    feed(source, ada)
    return story, source, ada, marks


def test_a_voided_touchpoint_stays_on_the_timeline_marked_and_stops_counting(
        store: ReadStore) -> None:
    _, source, ada, marks = _story_with_mistakes()
    catch_up(store, source, batch=1)
    summary = SummaryView(store).summary(str(ada.id))
    assert summary is not None
    c3_at = marks["c3"].occurred_at.isoformat()
    assert summary["channels"]["phone"] == {"touches": 2, "last_contact_at": c3_at}
    assert summary["last_contact_at"] == c3_at  # not 2099 any more
    assert summary["events"] == 7  # the log: the voided call and the void both count
    page = TimelineView(store).page(str(ada.id), limit=50)
    by_event = {i["event_id"]: i for i in page.items}
    bad = by_event[str(marks["bad"].event_id)]
    assert bad["voided"] and not bad["corrected"] and bad["summary"] == "year typo"
    assert [i["kind"] for i in page.items].count("touchpoint_voided") == 1


def test_a_corrected_touchpoint_moves_on_the_timeline_and_in_the_summary(
        store: ReadStore) -> None:
    _, source, ada, marks = _story_with_mistakes()
    catch_up(store, source)
    view = TimelineView(store)
    row = next(i for i in view.page(str(ada.id), limit=50).items
               if i["event_id"] == str(marks["visit"].event_id))
    assert row["corrected"] and not row["voided"]
    assert row["occurred_at"] == datetime(2025, 12, 1, tzinfo=UTC)
    assert row["summary"] == "boiler fixed"
    detail = view.detail(str(marks["visit"].event_id))
    assert detail is not None and detail.data["place"] == "York"
    found = view.page(str(ada.id), where=TimelineFilter(text="boiler")).items
    assert sorted(i["kind"] for i in found) == ["touchpoint_corrected", "visit"]
    summary = SummaryView(store).summary(str(ada.id))
    assert summary is not None
    assert summary["channels"]["visit"]["last_contact_at"] == "2025-12-01T00:00:00+00:00"


def test_corrections_read_the_same_whatever_the_batch_and_a_rebuild_equals_live(
        tmp_path: Path) -> None:
    from replays.rebuild import rebuild
    _, source, ada, _ = _story_with_mistakes()
    one, all_at_once = (ReadStore(f"sqlite:///{tmp_path / n}.db") for n in ("one", "all"))
    catch_up(one, source, batch=1)
    catch_up(all_at_once, source, batch=1000)  # the void lands in its touchpoint's batch
    cid = str(ada.id)
    assert SummaryView(one).summary(cid) == SummaryView(all_at_once).summary(cid)
    assert TimelineView(one).page(cid).items == TimelineView(all_at_once).page(cid).items
    results = rebuild(one, source, registry.select(None), verify_only=True, batch=2)
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def test_a_touch_whose_every_event_is_voided_counts_again_when_it_has_a_new_event(
        store: ReadStore) -> None:
    story, source = Story(), ListSource()
    ada = story.register("Ada")
    step = {"from_number": None, "to_number": None, "queue": None, "agent": None, "details": {}}
    story.touch(ada, Customer.CallStepRecorded, "phone", call_id="k1", step="offered",
                sequence=0, **step)
    first = ada.pending_events[-1]
    feed(source, ada)
    catch_up(store, source)
    ada.void_touchpoint(story.prov(), first, "wrong customer",  # type: ignore[arg-type]
                        history=[e for _, e in source.items])
    feed(source, ada)
    catch_up(store, source)
    summary = SummaryView(store).summary(str(ada.id))
    assert summary is not None and "phone" not in summary["channels"]
    story.touch(ada, Customer.CallStepRecorded, "phone", call_id="k1", step="ended",
                sequence=1, **step)
    feed(source, ada)
    catch_up(store, source)
    summary = SummaryView(store).summary(str(ada.id))
    assert summary is not None and summary["channels"]["phone"]["touches"] == 1


def test_a_fill_collects_young_objects_less_often_and_leaves_the_collector_as_found(
        store: ReadStore) -> None:
    import gc

    from projections.engine import create_generation, ensure_live
    from replays.fill import FILL_GC_THRESHOLD, fill

    story, source = Story(), ListSource()
    ada = story.register("Ada")
    story.touch(ada, Customer.CallLogged, "phone", **call_fields("c1", "a call"))
    feed(source, ada)
    timeline = registry.get("timeline")
    db = store.connect()
    ensure_live(db, timeline)
    generation = create_generation(db, timeline)
    seen: list[tuple[int, ...]] = []
    apply = timeline.apply

    def watched(db: Db, t: Any, items: Any) -> None:
        seen.append(gc.get_threshold())
        apply(db, t, items)

    timeline.apply = watched  # type: ignore[method-assign]
    before = gc.get_threshold()
    try:
        fill(store, source, [(timeline, generation)], source.head(), batch=1000)
    finally:
        db.close()
    assert seen and all(t[0] == FILL_GC_THRESHOLD for t in seen)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    # A process that froze its own heap (the HTTP app does) keeps it frozen.
    gc.freeze()
    try:
        db = store.connect()
        again = create_generation(db, timeline)
        db.close()
        fill(store, source, [(timeline, again)], source.head(), batch=1000)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def _directory_terms(tmp_path: Path, name: str, source: ListSource,
                     batch: int) -> list[tuple[str, str]]:
    store = ReadStore(f"sqlite:///{tmp_path / name}")
    catch_up(store, source, batch)
    db = store.connect()
    try:
        t = registry.get("directory").names(live_generation(db, "directory").generation)  # type: ignore[union-attr]
        return [tuple(r) for r in db.all(f"SELECT term, customer_id FROM {t.term} "
                                         "ORDER BY term, customer_id")]
    finally:
        db.close()


def test_directory_terms_are_those_of_the_last_names_and_points_whatever_the_batch(
        tmp_path: Path) -> None:
    story, source = Story(), ListSource()
    ada, bob = story.register("Ada Lovelace", "Analytical"), story.register("Bob Stone")
    ada.add_contact_point(story.prov(), "email", "ada@example.com", None)
    ada.add_contact_point(story.prov(), "phone", "+442071838750", None)
    ada.remove_contact_point(story.prov(), "email", "ada@example.com", "bounced")
    ada.change_profile(story.prov(), {"name": "Ada King", "company": None})
    bob.add_contact_point(story.prov(), "email", "bob@example.com", None)
    bob.erase(story.prov(), "asked")
    feed(source, ada, bob)
    one_by_one = _directory_terms(tmp_path, "a.db", source, 1)
    assert _directory_terms(tmp_path, "b.db", source, 1000) == one_by_one
    ada_terms = {term for term, cid in one_by_one if cid == str(ada.id)}
    assert {"ada king", "king", "442071838750"} <= ada_terms
    assert not ada_terms & {"lovelace", "analytical", "ada@example.com"}
    assert all(cid != str(bob.id) for _, cid in one_by_one)  # erased: found by id only
