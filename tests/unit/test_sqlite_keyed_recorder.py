"""The SQLite recorder's one-statement insert of several events returns their notification
ids, in order, as the library's one-row-at-a-time insert did."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from tests.support.hubs import make_hub, write_env


def _events(count: int, first_version: int = 1) -> list[StoredEvent]:
    oid = uuid4()
    return [StoredEvent(originator_id=oid, originator_version=first_version + i,
                        topic="tests:Row", state=b"{}") for i in range(count)]


def test_a_save_of_several_events_returns_the_ids_they_are_read_under(tmp_path: Path) -> None:
    hub = make_hub(write_env("sqlite", tmp_path / "data"))
    try:
        recorder = hub.recorder
        one = recorder.insert_events(_events(1))  # the library's path: one row
        many = recorder.insert_events(_events(7))
        more = recorder.insert_events(_events(3))
        ids = [*one, *many, *more]  # type: ignore[misc]
        assert ids == list(range(ids[0], ids[0] + 11))
        read = recorder.select_notifications(ids[0], 20)
        assert [n.id for n in read] == ids
        assert len({n.originator_id for n in read[1:8]}) == 1
        assert [n.originator_version for n in read[1:8]] == list(range(1, 8))
        clash = _events(3)
        recorder.insert_events(clash[1:2])
        with pytest.raises(IntegrityError):  # the whole save fails, nothing half-written
            recorder.insert_events(clash)
        assert recorder.max_notification_id() == ids[-1] + 1
        assert recorder.insert_events(_events(2)) == [ids[-1] + 2, ids[-1] + 3]
    finally:
        hub.close()



@pytest.mark.parametrize("way", ["kept writer", "pool's writer"])
def test_a_one_event_keyed_save_is_one_transaction_and_fails_as_the_library(
    tmp_path: Path, way: str,
) -> None:
    """One event under one key (a command's save) has its own short path: ids in order
    with the other saves, the key row as a multi-event save writes it, and a repeated
    key or version is the library's ``IntegrityError`` with nothing half-written. The
    same on the recorder's kept connection and, where readers and writers exclude each
    other (an in-memory database), on the pool's writer taken and given back."""
    hub = make_hub(write_env("sqlite", tmp_path / "data"))
    try:
        recorder = hub.recorder
        if way == "pool's writer":
            recorder.datastore.pool._mutually_exclusive_read_write = True
        first, second = _events(1), _events(2)
        (one,) = recorder.insert_events(first, source_keys=[("k-one", 0, uuid4())])
        two = recorder.insert_events(
            second, source_keys=[("k-two", 0, uuid4(), 0), ("k-two", 1, uuid4(), 1)])
        assert two == [one + 1, one + 2]
        found = recorder.lookup_source_keys(["k-one", "k-two"])
        assert [(r.originator_id, r.version, r.position) for r in found["k-one"]] == [
            (first[0].originator_id, 1, one)]
        assert [(r.originator_id, r.version, r.position) for r in found["k-two"]] == [
            (second[0].originator_id, 1, one + 1), (second[0].originator_id, 2, one + 2)]
        with pytest.raises(IntegrityError, match="touchstream_source_keys"):
            recorder.insert_events(_events(1), source_keys=[("k-one", 0, uuid4())])
        with pytest.raises(IntegrityError, match="stored_events"):
            recorder.insert_events(first, source_keys=[("k-new", 0, uuid4())])
        assert recorder.lookup_source_keys(["k-new"]) == {}  # its key row rolled back
        assert recorder.max_notification_id() == one + 2  # no event row of either
        (last,) = recorder.insert_events(_events(1), source_keys=[("k-three", 0, uuid4())])
        assert last == one + 3
    finally:
        hub.close()


def test_a_one_event_keyed_save_waits_for_the_pools_writer(tmp_path: Path) -> None:
    """The one-event save writes on a connection of its own, but only under the pool's
    writer lock, as every other writer of the pool: while another save holds the pool's
    writer it waits (up to the pool's timeout, then the library's error), and it lands
    after that save, in commit order."""
    from eventsourcing.persistence import OperationalError

    hub = make_hub(write_env("sqlite", tmp_path / "data"))
    try:
        recorder = hub.recorder
        pool = recorder.datastore.pool
        (first,) = recorder.insert_events(_events(1), source_keys=[("k-a", 0, uuid4())])
        writer = pool.get_connection(is_writer=True)  # another writer, mid-save
        timeout, pool.pool_timeout = pool.pool_timeout, 0.2
        try:
            with pytest.raises(OperationalError):
                recorder.insert_events(_events(1), source_keys=[("k-b", 0, uuid4())])
        finally:
            pool.pool_timeout = timeout
            pool.put_connection(writer)
        assert recorder.lookup_source_keys(["k-b"]) == {}  # nothing written
        (second,) = recorder.insert_events(_events(1), source_keys=[("k-b", 0, uuid4())])
        assert second == first + 1
    finally:
        hub.close()
