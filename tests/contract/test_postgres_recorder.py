"""The PostgreSQL event recorder's faults: large saves never hang, concurrent duplicates
never poison a pooled connection (issue 10, items 2 and 4).

Both faults lived in psycopg 3.3.9's pipeline mode (see ``touchstream.adapters.recorders``);
these tests run on the real embedded PostgreSQL and are bounded by pytest-timeout,
so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from commands import messages as m
from commands.hub import Hub
from tests.support.hubs import make_hub, write_env
from tests.support.invariants import assert_no_duplicate_source_keys

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return write_env("postgres", tmp_path / "data")


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(env)
    yield h
    h.close()


def stored_events(total_bytes: int, count: int) -> list[StoredEvent]:
    oid = uuid4()
    return [
        StoredEvent(originator_id=oid, originator_version=i + 1, topic="tests:Big",
                    state=os.urandom(total_bytes // count))
        for i in range(count)
    ]


@pytest.mark.timeout(60)
def test_a_single_save_of_5_mb_completes_with_ids_in_order(hub: Hub) -> None:
    before = hub.recorder.max_notification_id() or 0
    ids = hub.recorder.insert_events(stored_events(5 << 20, 5000))
    assert ids == list(range(before + 1, before + 5001))
    back = hub.recorder.select_events(hub.recorder.select_notifications(ids[0], 1)[0].originator_id)
    assert len(back) == 5000 and sum(len(e.state) for e in back) >= (5 << 20) - 5000


@pytest.mark.timeout(60)
def test_a_large_save_waiting_on_the_table_lock_completes_when_it_is_released(
    hub: Hub, env: dict[str, str],
) -> None:
    """While the server waits on the lock it reads nothing, so far less than 1 MB
    filled the socket and hung the pipelined save for good."""
    hub.recorder.insert_events(stored_events(1000, 1))  # tables exist
    result: list[object] = []
    with psycopg.connect(env["TOUCHSTREAM_EVENT_STORE"]) as holder:
        holder.execute("LOCK TABLE touchstream_events IN EXCLUSIVE MODE")
        saver = threading.Thread(
            target=lambda: result.append(hub.recorder.insert_events(stored_events(2 << 20, 400))))
        saver.start()
        saver.join(1.0)
        assert saver.is_alive() and not result  # really waiting on the lock
        holder.rollback()
    saver.join(30)
    assert not saver.is_alive()
    assert isinstance(result[0], list) and len(result[0]) == 400


@pytest.mark.timeout(180)
def test_concurrent_duplicate_and_new_commands_from_four_threads_raise_no_errors(hub: Hub) -> None:
    """Every 11th command repeats a key still in flight: the UNIQUE violations that
    follow must never leave a pooled connection with a stale prepared statement."""
    customers = [UUID(hub.execute(m.RegisterCustomer(name=f"C{i}", source_key=f"reg:{i}"))
                      .customer_id) for i in range(4)]
    total = 800
    numbers = iter(range(total))
    take = threading.Lock()
    errors: Counter[str] = Counter()
    duplicates = 0

    def worker() -> None:
        nonlocal duplicates
        while True:
            with take:
                i = next(numbers, None)
            if i is None:
                return
            k = i - 3 if i % 11 == 10 else i
            try:
                r = hub.execute(m.LogCall(customer_id=customers[k % 4], call_id=f"c{k}",
                                          from_number="+442079460018"))
            except Exception as exc:  # noqa: BLE001 -- every error counts; the assert names them
                errors[f"{type(exc).__name__}: {exc}"] += 1
                continue
            with take:
                duplicates += r.duplicate

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    repeats = sum(1 for i in range(total) if i % 11 == 10)
    assert duplicates == repeats
    recorded = [e for c in customers for e in hub.stream(c)]
    assert_no_duplicate_source_keys(recorded)
    keys = Counter(getattr(e, "source_key", None) for e in recorded)
    calls = {k for k in keys if k and k.startswith("call:")}
    assert len(calls) == total - repeats
    assert all(keys[k] == 1 for k in calls)


def test_a_one_event_save_keys_its_row_as_an_array_save_does_and_fails_as_the_library(
    hub: Hub, env: dict[str, str],
) -> None:
    """One event under one key goes through its own scalar function on a connection taken
    from the pool directly: the key row must read back exactly as a multi-event save's,
    a duplicate key or version must still be the library's ``IntegrityError``, and the
    pooled connection must stay usable after it."""
    oid, ids = uuid4(), [uuid4() for _ in range(3)]
    one, two, three = (StoredEvent(originator_id=oid, originator_version=v, topic="tests:One",
                                   state=bytes([v])) for v in (1, 2, 3))
    (first,) = hub.recorder.insert_events([one], source_keys=[("k-one", 0, ids[0])])
    pair = hub.recorder.insert_events(
        [two, three], source_keys=[("k-two", 0, ids[1], 0), ("k-two", 1, ids[2], 1)])
    assert pair == [first + 1, first + 2]
    found = hub.recorder.lookup_source_keys(["k-one", "k-two"])
    assert [(r.originator_id, r.version, r.event_id, r.position) for r in found["k-one"]] == [
        (oid, 1, ids[0], first)]
    assert [(r.originator_id, r.version, r.position) for r in found["k-two"]] == [
        (oid, 2, first + 1), (oid, 3, first + 2)]
    with psycopg.connect(env["TOUCHSTREAM_EVENT_STORE"]) as conn:
        stored = conn.execute("SELECT DISTINCT originator_id FROM touchstream_source_keys "
                              "WHERE source_key IN ('k-one', 'k-two')").fetchall()
    assert stored == [(str(oid),)]
    four = StoredEvent(originator_id=oid, originator_version=4, topic="tests:One", state=b"4")
    for event, key in ((four, "k-one"), (one, "k-new")):  # a repeated key, a taken version
        for _ in range(6):  # past psycopg's prepare threshold: no stale prepared statement
            with pytest.raises(IntegrityError):
                hub.recorder.insert_events([event], source_keys=[(key, 0, uuid4())])
    (last,) = hub.recorder.insert_events([four], source_keys=[("k-four", 0, ids[0])])
    assert last > first + 2  # a failed insert may use up ids (a sequence): never reorder them


def test_a_one_event_save_prepares_its_statement_again_on_a_connection_that_lost_it(
    hub: Hub,
) -> None:
    """The one-event call is a statement prepared per pooled connection through libpq; a
    connection whose statement is gone (``DEALLOCATE ALL``) prepares it again and saves."""
    recorder = hub.recorder
    oid = uuid4()
    pool = recorder.datastore.pool
    (first,) = recorder.insert_events(  # opens the pool the library's way
        [StoredEvent(originator_id=oid, originator_version=1, topic="tests:One", state=b"1")],
        source_keys=[("k-prep-1", 0, uuid4())])
    conn = pool.getconn()
    try:
        ids = []
        for version in (2, 3):
            values = [f"k-prep-{version}".encode(), b"0", str(uuid4()).encode(),
                      str(oid).encode(), b"%d" % version, b"tests:One", bytes([version])]
            ids.append(int(recorder._exec_append_one(conn, values).get_value(0, 0)))
            conn.execute("DEALLOCATE ALL")
        with pytest.raises(psycopg.errors.UniqueViolation):  # and errors are still errors
            recorder._exec_append_one(conn, values)
    finally:
        pool.putconn(conn)
    assert ids == [first + 1, first + 2]
    assert [r.version for r in recorder.lookup_source_keys(["k-prep-3"])["k-prep-3"]] == [3]


def test_a_one_event_save_on_a_connection_the_server_closed_is_a_lost_server(
    hub: Hub,
) -> None:
    """A connection the server closed gives libpq a result without a SQLSTATE: it is a
    lost server (``OperationalError``, which the store timeout retries and the API
    answers with a 503), never a bare ``DatabaseError`` that the API would answer with
    a 500 (seen when PostgreSQL stopped between the pool's check and the call)."""
    recorder = hub.recorder
    oid = uuid4()
    (first,) = recorder.insert_events(  # opens the pool the library's way
        [StoredEvent(originator_id=oid, originator_version=1, topic="tests:One", state=b"1")],
        source_keys=[("k-cut-1", 0, uuid4())])
    pool = recorder.datastore.pool
    values = [b"k-cut-2", b"0", str(uuid4()).encode(), str(oid).encode(), b"2",
              b"tests:One", b"2"]
    for prepared in (True, False):  # the call itself, and preparing it on the connection
        conn = pool.getconn()
        try:
            if prepared:  # a save of another stream prepares the call on this connection
                recorder._exec_append_one(conn, [b"k-cut-p", b"0", str(uuid4()).encode(),
                                                 str(uuid4()).encode(), b"1", b"tests:One",
                                                 b"p"])
            else:
                recorder._prepared_on.discard(conn)
            with psycopg.connect(conn.info.dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            with pytest.raises(psycopg.OperationalError):
                recorder._exec_append_one(conn, values)
        finally:
            pool.putconn(conn)  # a broken connection is discarded by the pool
    (position,) = recorder.insert_events(  # and the next save is on a good one
        [StoredEvent(originator_id=oid, originator_version=2, topic="tests:One", state=b"2")],
        source_keys=[("k-cut-2", 0, uuid4())])
    assert [r.version for r in recorder.lookup_source_keys(["k-cut-2"])["k-cut-2"]] == [2]
    assert position > first  # after the failed calls, still in commit order


def test_held_connections_cut_by_the_server_are_retried_and_go_back_to_the_pool(
    env: dict[str, str],
) -> None:
    """A one-event save and a snapshot keep up to ``KEEP`` of the pool's connections
    between calls (``HeldConnections``). When the server closes them while they wait
    there, the next saves are lost-server errors retried on fresh connections within
    the store timeout: they land, once each, in commit order. Closing the hub gives the
    held connections back to the pool, which closes them."""
    from touchstream.adapters.recorders import HeldConnections, held_connections

    hub = make_hub(env)
    recorder = hub.recorder
    held = held_connections(recorder.datastore)
    oid = uuid4()

    def save(version: int) -> int:
        (position,) = recorder.insert_events(
            [StoredEvent(originator_id=oid, originator_version=version, topic="tests:One",
                         state=b"%d" % version)],
            source_keys=[(f"k-held-{version}", 0, uuid4())])
        return position

    try:
        first = save(1)
        snapshot = StoredEvent(originator_id=oid, originator_version=1,
                               topic="tests:Snapshot", state=b"s")
        assert hub.snapshots is not None
        hub.snapshots.recorder.insert_events([snapshot])  # the held, prepared snapshot insert
        idle = list(held._idle)
        assert 1 <= len(idle) <= HeldConnections.KEEP
        pids = [conn.info.backend_pid for conn, _ in idle]
        with psycopg.connect(idle[0][0].info.dsn, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        second = save(2)  # on a cut connection first: OperationalError, retried
        assert second > first
        assert all(conn.info.backend_pid not in pids for conn, _ in held._idle)
        hub.snapshots.recorder.insert_events(
            [StoredEvent(originator_id=oid, originator_version=2, topic="tests:Snapshot",
                         state=b"t")])
        with pytest.raises(IntegrityError):  # a snapshot's version is still unique
            hub.snapshots.recorder.insert_events([snapshot])
        assert [s.state for s in hub.snapshots.recorder.select_events(oid)] == [b"s", b"t"]
        assert [r.version for r in recorder.lookup_source_keys(["k-held-2"])["k-held-2"]] == [2]
        kept = [conn for conn, _ in held._idle]
        assert kept
    finally:
        hub.close()
    assert all(conn.closed for conn in kept)  # given back, then closed with the pool
