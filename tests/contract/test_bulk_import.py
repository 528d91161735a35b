"""The bulk import (history backfill) keeps every guarantee of the one-command path.

Runs against SQLite, PostgreSQL, the EventStoreDB protocol on SQLite
(``sqlite-reservation``: the importer falls back to one command at a time) and
EventStoreDB when ``EVENTSTOREDB_URI`` is set.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from commands import messages as m
from commands.bulk import BulkImporter
from commands.errors import ConflictError
from commands.hub import Hub
from tests.conftest import store_env
from tests.support.hubs import WRITE_STORES, make_hub, orphan_claim, write_env
from tests.support.invariants import assert_no_duplicate_source_keys, assert_nothing_lost

T0 = datetime(2023, 5, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(params=WRITE_STORES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return write_env(str(request.param), tmp_path / "data")


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(env)
    yield h
    h.close()


def register(hub: Hub, name: str = "Grace Hopper", **kw: object) -> UUID:
    cmd = m.RegisterCustomer(name=name, source_key=f"reg:{name}:{uuid4()}", **kw)  # type: ignore[arg-type]
    return UUID(hub.execute(cmd).customer_id)


def calls(customer_id: UUID, prefix: str, n: int) -> list[m.LogCall]:
    return [m.LogCall(customer_id=customer_id, call_id=f"{prefix}-{i}", duration_s=i,
                      occurred_at=T0 + timedelta(minutes=i)) for i in range(n)]


def keys_on(hub: Hub, customer_id: UUID) -> Counter[str]:
    return Counter(e.source_key for e in hub.stream(customer_id))


def test_reimporting_the_same_history_records_nothing_new(hub: Hub) -> None:
    a, b = register(hub, "A"), register(hub, "B")
    history = calls(a, "a", 30) + calls(b, "b", 20)
    first = BulkImporter(hub, chunk_events=7).import_history(history)
    assert all(r.ok and not r.recorded.duplicate for r in first)  # type: ignore[union-attr]
    before = list(hub.stream(a)) + list(hub.stream(b))
    again = BulkImporter(hub, chunk_events=7).import_history(history)
    assert all(r.ok and r.recorded.duplicate for r in again)  # type: ignore[union-attr]
    assert [r.recorded.event_ids for r in again] == [r.recorded.event_ids for r in first]  # type: ignore[union-attr]
    after = list(hub.stream(a)) + list(hub.stream(b))
    assert len(after) == len(before)
    assert_no_duplicate_source_keys(after)
    assert_nothing_lost([f"call:a-{i}" for i in range(30)], hub.stream(a))


def test_mixed_new_and_already_recorded_commands_record_each_key_once(hub: Hub) -> None:
    cid = register(hub, contact_points=[{"kind": "phone", "value": "020 7946 0018"}])
    earlier = hub.execute(m.LogCall(customer_id=cid, call_id="mix-3"))
    history: list[m.Command] = [
        *calls(cid, "mix", 6),
        m.LogCall(customer_id=cid, call_id="mix-1"),  # a second copy in the same file
        m.RecordEmail(message_id="<stranger@x>", from_address="new.person@example.org"),
        m.LogCall(call_id="by-number", from_number="+44 20 7946 0018"),
        m.AddNote(customer_id=cid, text="backfilled", source_key="note-1"),
        m.LogCall(customer_id=uuid4(), call_id="nobody"),
    ]
    results = BulkImporter(hub).import_history(history)
    assert len(results) == len(history)
    found = results[3].recorded
    assert found is not None and found.duplicate
    assert (found.event_ids, found.versions) == (earlier.event_ids, earlier.versions)
    assert results[6].recorded is not None and results[6].recorded.duplicate
    assert results[6].recorded.event_ids == results[1].recorded.event_ids  # type: ignore[union-attr]
    assert results[8].recorded is not None and results[8].recorded.customer_id == str(cid)
    assert results[9].recorded is not None and not results[9].recorded.duplicate
    assert results[10].error is not None and "no customer" in results[10].error
    keys = keys_on(hub, cid)
    assert all(keys[f"call:mix-{i}"] == 1 for i in range(6))
    assert keys["call:by-number"] == 1
    prospect = hub.find_by_contact("email", "new.person@example.org")
    assert prospect is not None and keys_on(hub, prospect)["email:<stranger@x>"] == 1


def test_a_concurrent_writer_on_the_same_customer_loses_nothing(
    env: dict[str, str], hub: Hub
) -> None:
    cid = register(hub)
    other = make_hub(env)  # another connection pool, as another process would have
    n = 40
    written: list[str] = []

    def writer() -> None:
        # A live writer at a realistic pace (a hot loop would starve any optimistic
        # writer, one command or bulk, past its bounded retries).
        for i in range(20):
            other.execute(m.LogCall(customer_id=cid, call_id=f"live-{i}"))
            written.append(f"call:live-{i}")
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # Tiny chunks: many saves, so the live writer interleaves and forces retries.
        results = BulkImporter(hub, chunk_events=3, batch_commands=9).import_history(
            calls(cid, "bulk", n)
        )
    finally:
        thread.join(timeout=120)
        other.close()
    assert all(r.ok for r in results)
    stream = list(hub.stream(cid))
    assert [e.originator_version for e in stream] == list(range(len(stream)))
    assert_nothing_lost([f"call:bulk-{i}" for i in range(n)] + written, stream)
    assert_no_duplicate_source_keys(stream)
    assert all(count == 1 for key, count in keys_on(hub, cid).items() if key.startswith("call:"))


def test_a_write_between_load_and_save_forces_a_retry_that_loses_nothing(
    env: dict[str, str], hub: Hub
) -> None:
    """Deterministic race: another writer appends right before each of the first saves."""
    cid = register(hub)
    other = make_hub(env)
    raced: list[str] = []
    save_keyed = hub.save_keyed

    def racing(entries: list[tuple[object, list[str]]]) -> object:
        if len(raced) < 3:
            key = f"race-{len(raced)}"
            other.execute(m.LogCall(customer_id=cid, call_id=key))
            raced.append(f"call:{key}")
        return save_keyed(entries)  # type: ignore[arg-type]

    hub.save_keyed = racing  # type: ignore[assignment,method-assign]
    try:
        results = BulkImporter(hub, chunk_events=4).import_history(calls(cid, "bulk", 10))
    finally:
        other.close()
    assert all(r.ok and not r.recorded.duplicate for r in results)  # type: ignore[union-attr]
    stream = list(hub.stream(cid))
    assert_nothing_lost([f"call:bulk-{i}" for i in range(10)] + raced, stream)
    assert_no_duplicate_source_keys(stream)
    if hub.key_index is not None:
        assert len(raced) == 3  # the bulk path really saved (and lost three races)


def test_bulk_import_follows_a_merge_like_one_command(hub: Hub) -> None:
    a, b = register(hub, "A"), register(hub, "B")
    hub.execute(m.MergeCustomers(source_id=a, target_id=b))
    results = BulkImporter(hub).import_history(calls(a, "merged", 5) + calls(b, "target", 5))
    assert {r.recorded.customer_id for r in results} == {str(b)}  # type: ignore[union-attr]
    keys = keys_on(hub, b)
    assert all(keys[f"call:merged-{i}"] == 1 and keys[f"call:target-{i}"] == 1 for i in range(5))


def test_long_backfill_leaves_the_customer_snapshotted(hub: Hub) -> None:
    cid = register(hub)
    BulkImporter(hub, chunk_events=45).import_history(calls(cid, "snap", 130))
    assert hub.snapshots is not None
    snaps = list(hub.snapshots.get(hub.naming.customer(cid), desc=True, limit=1))
    assert snaps and snaps[0].originator_version >= 100
    assert hub.customer(cid).touch_counts["phone"] == 130


@pytest.mark.timeout(180)
def test_a_2000_event_backfill_on_postgres_is_chunked_and_does_not_hang(
    tmp_path: Path,
) -> None:
    """psycopg's pipeline was seen to hang on one ~1 MB insert: the importer must chunk."""
    hub = make_hub(store_env("postgres", tmp_path / "data"))
    try:
        cid = register(hub)
        history = [
            m.LogCall(customer_id=cid, call_id=f"big-{i}", summary="x" * 400,
                      occurred_at=T0 + timedelta(seconds=i))
            for i in range(2000)
        ]
        saves: list[int] = []
        save_keyed = hub.save_keyed

        def counting(entries: list[tuple[object, list[str]]]) -> object:
            saves.append(sum(len(keys) for _, keys in entries))
            return save_keyed(entries)  # type: ignore[arg-type]

        hub.save_keyed = counting  # type: ignore[assignment,method-assign]
        results = BulkImporter(hub).import_history(history)
        assert all(r.ok and not r.recorded.duplicate for r in results)  # type: ignore[union-attr]
        assert sum(saves) == 2000 and len(saves) >= 4 and max(saves) <= 500
        positions = [r.recorded.position for r in results]  # type: ignore[union-attr]
        assert len(set(positions)) == 2000
        assert keys_on(hub, cid).total() == 2001
    finally:
        hub.close()


def test_a_1500_event_backfill_on_sqlite_is_one_transaction(tmp_path: Path) -> None:
    """SQLite's recorder declares 2,000 events a save and 16 MiB: 1,500 events of
    ~1.5 MB (three saves of 500, or six of ~256 KB, before) go in one insert, one commit."""
    hub = make_hub(store_env("sqlite", tmp_path / "data"))
    try:
        cid = register(hub)
        history = [
            m.LogCall(customer_id=cid, call_id=f"big-{i}", summary="x" * 1000,
                      occurred_at=T0 + timedelta(seconds=i))
            for i in range(1500)
        ]
        inserts: list[int] = []  # events per transaction of the events' recorder
        insert_events = hub.recorder.insert_events

        def counting(stored: list[object], **kwargs: object) -> object:
            inserts.append(len(stored))
            return insert_events(stored, **kwargs)  # type: ignore[arg-type]

        hub.recorder.insert_events = counting  # type: ignore[method-assign]
        results = BulkImporter(hub).import_history(history)
        assert all(r.ok and not r.recorded.duplicate for r in results)  # type: ignore[union-attr]
        assert inserts == [1500]
        positions = [r.recorded.position for r in results]  # type: ignore[union-attr]
        assert positions == sorted(positions) and len(set(positions)) == 1500
        assert keys_on(hub, cid).total() == 1501
    finally:
        hub.close()


def test_unknown_senders_are_held_for_triage_by_the_bulk_path_too(env: dict[str, str]) -> None:
    h = make_hub(env)
    h.unknown_contacts = "triage"
    try:
        email = m.RecordEmail(message_id="<held@x>", from_address="stranger@example.org")
        results = BulkImporter(h).import_history([email, email])
        again = BulkImporter(h).import_history([email])
        assert all(r.recorded is not None and r.recorded.held_for_triage
                   for r in results + again)
        assert again[0].recorded.duplicate  # type: ignore[union-attr]
        assert h.find_by_contact("email", "stranger@example.org") is None
        assert [t.source_key for t in h.held_touchpoints()] == ["email:<held@x>"]
    finally:
        h.close()


def test_an_orphaned_claim_is_repaired_alike_on_the_bulk_and_the_one_command_paths(
    hub: Hub
) -> None:
    prospect = orphan_claim(hub, "phone", "+447700900555")
    number = "+44 7700 900555"
    bulk = BulkImporter(hub).import_history(
        [m.LogCall(call_id=f"orphan-{i}", from_number=number, occurred_at=T0) for i in range(3)]
    )
    assert [r.error for r in bulk] == [None] * 3
    assert {r.recorded.customer_id for r in bulk if r.recorded} == {str(prospect)}
    one = hub.execute(m.LogCall(call_id="orphan-one", from_number=number, occurred_at=T0))
    assert one.customer_id == str(prospect)
    kinds = Counter(type(e).__name__ for e in hub.stream(prospect))
    assert (kinds["Registered"], kinds["CallLogged"]) == (1, 4)
    assert hub.find_by_contact("phone", number) == prospect
    assert_no_duplicate_source_keys(hub.stream(prospect))


def test_a_refused_registration_leaves_no_claim_where_claims_share_its_transaction(
    hub: Hub
) -> None:
    taken = register(hub, "First")
    again = m.RegisterCustomer(customer_id=taken, name="Second", source_key="reg:second",
                               contact_points=[{"kind": "email", "value": "second@example.com"}])  # type: ignore[list-item]
    with pytest.raises(ConflictError):
        hub.execute(again)
    if hub.context.keys.atomic:  # SQL: the claim was in the refused transaction
        assert hub.find_by_contact("email", "second@example.com") is None
