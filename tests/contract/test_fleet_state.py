"""Contract suites of the channels' state ports, on SQLite (one host) and PostgreSQL (a fleet).

Each port is opened twice on the same store, standing for two processes or
hosts: what one writes the other sees, and the guarantees hold across them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from channels.email.inbound import Remembered
from channels.email.state import ERASED, MAX_LOOKUP, Checkpoint, ImapState, LedgerRow
from channels.web.config import FormsConfig
from touchstream import settings as settings_mod
from touchstream.fleet import wiring as fleet
from touchstream.fleet.leases import LeaseGroup, Leases, acquire, owner_id


@pytest.fixture
def conf(read_env: dict[str, str]) -> settings_mod.Settings:
    return settings_mod.load(read_env)


def test_the_state_follows_the_stores(conf: settings_mod.Settings) -> None:
    expected = conf.read_store if conf.event_store_kind == "postgres" else None
    assert fleet.state_uri(conf) == expected


# ------------------------------------------------------------------------------ leases

@pytest.fixture
def leases(conf: settings_mod.Settings) -> Iterator[tuple[Leases, Leases]]:
    a, b = fleet.open_leases(conf), fleet.open_leases(conf)
    yield a, b
    a.close()
    b.close()


def test_a_held_lease_is_refused_to_another_until_it_expires(
        leases: tuple[Leases, Leases]) -> None:
    a, b = leases
    assert a.acquire("imap:x:INBOX", "host-a:1:aa", 0.3)
    assert a.acquire("imap:x:INBOX", "host-a:1:aa", 0.3)  # renewed by its holder
    assert not b.acquire("imap:x:INBOX", "host-b:1:bb", 30)
    assert b.holders("imap:x:") == {"imap:x:INBOX": "host-a:1:aa"}
    deadline = time.monotonic() + 5
    while not b.acquire("imap:x:INBOX", "host-b:1:bb", 30):  # a stopped renewing
        assert time.monotonic() < deadline, "an expired lease was never taken over"
        time.sleep(0.05)
    assert not a.acquire("imap:x:INBOX", "host-a:1:aa", 30)
    assert a.holders("imap:") == {"imap:x:INBOX": "host-b:1:bb"}


def test_a_released_lease_is_taken_at_once(leases: tuple[Leases, Leases]) -> None:
    a, b = leases
    assert a.acquire("projection:timeline", "host-a:1:aa", 60)
    b.release("projection:timeline", "host-b:1:bb")  # not its lease: nothing happens
    assert not b.acquire("projection:timeline", "host-b:1:bb", 60)
    a.release("projection:timeline", "host-a:1:aa")
    assert b.holders("projection:") == {}
    assert b.acquire("projection:timeline", "host-b:1:bb", 60)


def test_a_lease_of_a_dead_process_on_this_node_is_taken_at_once(
        leases: tuple[Leases, Leases]) -> None:
    a, b = leases
    dead_pid = _dead_pid()
    assert a.acquire("send:<m1@x>", f"node1:{dead_pid}:aa", 60)
    assert a.acquire("send:<m2@x>", f"node2:{dead_pid}:aa", 60)
    assert a.acquire("send:<m3@x>", f"node1:{os.getpid()}:aa", 60)
    assert acquire(b, "send:<m1@x>", "node1:1:bb", 60)  # same node, process gone
    assert not acquire(b, "send:<m2@x>", "node1:1:bb", 60)  # another node: wait it out
    assert not acquire(b, "send:<m3@x>", "node1:1:bb", 60)  # alive
    assert b.holders("send:")["send:<m1@x>"] == "node1:1:bb"


def test_racing_processes_get_one_holder(leases: tuple[Leases, Leases]) -> None:
    a, b = leases
    won: list[str] = []
    start = threading.Barrier(8)

    def race(i: int) -> None:
        owner = f"host-{i}:1:{i}"
        start.wait()
        if (a if i % 2 else b).acquire("imap:race:INBOX", owner, 60):
            won.append(owner)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def test_pool_members_share_the_names_fairly(leases: tuple[Leases, Leases]) -> None:
    a, b = leases
    names = ["p1", "p2", "p3", "p4", "p5"]
    first = LeaseGroup(a, "projection:", names, owner_id("n1"), 60, pool="t")
    second = LeaseGroup(b, "projection:", names, owner_id("n2"), 60, pool="t")
    assert first.take() == set(names)  # alone: everything
    assert second.take() == set()  # joins: all held
    assert len(first.take()) == 3  # at its renewal: gives back the excess
    assert len(second.take()) == 2
    assert first.held | second.held == set(names) and not first.held & second.held
    first.release_all()  # a clean stop hands over at once
    assert second.take() == set(names)


def test_a_group_runs_its_work_while_held_and_hands_over_when_stopped(
        leases: tuple[Leases, Leases]) -> None:
    a, b = leases
    group = LeaseGroup(a, "imap:acct:", ["INBOX", "Sales"], owner_id("n1"), 60)
    rounds: list[frozenset[str]] = []
    stop = threading.Event()

    def work(owned: frozenset[str], round_over: threading.Event) -> None:
        rounds.append(owned)
        round_over.wait()

    runner = threading.Thread(target=group.run, args=(stop, work))
    runner.start()
    deadline = time.monotonic() + 10
    while not rounds:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert rounds == [frozenset({"INBOX", "Sales"})]
    assert not b.acquire("imap:acct:INBOX", "n2:1:bb", 60)  # one follower per folder
    stopped_at = time.monotonic()
    stop.set()
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - stopped_at < 1.0
    assert b.acquire("imap:acct:INBOX", "n2:1:bb", 60)  # released on the way out


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


# ------------------------------------------------------------------------------ IMAP state

@pytest.fixture
def imap(conf: settings_mod.Settings) -> Iterator[tuple[ImapState, ImapState]]:
    a, b = fleet.open_imap_state(conf), fleet.open_imap_state(conf)
    yield a, b
    a.close()
    b.close()


def test_checkpoint_and_ledger_are_shared_and_never_move_back(
        imap: tuple[ImapState, ImapState]) -> None:
    a, b = imap
    assert a.checkpoint("acct", "INBOX") is None
    a.reset("acct", "INBOX", 7)
    a.commit("acct", "INBOX", 7, [LedgerRow(1, "k1", "email"), LedgerRow(2, "k2", "email")], 2)
    b.commit("acct", "INBOX", 7, [LedgerRow(1, "k1", "email")], 1)  # a late, older batch
    assert b.checkpoint("acct", "INBOX") == Checkpoint(7, 2)
    b.commit("acct", "INBOX", 7, [LedgerRow(3, "k3", "quarantine")], None)  # a retry: no move
    assert a.checkpoint("acct", "INBOX") == Checkpoint(7, 2)
    assert set(a.ledger("acct", "INBOX", 7)) == {1, 2, 3}
    assert [r.uid for r in a.quarantined("acct", "INBOX", 7)] == [3]
    assert a.released_as("acct", "INBOX", 7, 3) is None
    b.commit("acct", "INBOX", 7, [LedgerRow(3, "k3b", "email")], None)  # released by a retry
    assert a.released_as("acct", "INBOX", 7, 3) == "k3b"
    assert a.checkpoint("acct", "Sent") is None  # folders apart


def test_a_new_uidvalidity_voids_the_old_ledger(imap: tuple[ImapState, ImapState]) -> None:
    a, b = imap
    a.commit("acct", "INBOX", 7, [LedgerRow(5, "k5", "email")], 5)
    b.reset("acct", "INBOX", 8)
    assert a.checkpoint("acct", "INBOX") == Checkpoint(8, 0)
    assert a.ledger("acct", "INBOX", 7) == {}
    a.commit("acct", "INBOX", 8, [LedgerRow(1, "k5", "email")], 1)
    assert b.checkpoint("acct", "INBOX") == Checkpoint(8, 1)


def test_erasure_keeps_the_uid_and_drops_the_key_everywhere(
        imap: tuple[ImapState, ImapState]) -> None:
    a, b = imap
    a.commit("acct", "INBOX", 1, [LedgerRow(1, "gone", "email"), LedgerRow(2, "kept", "email")],
             2)
    a.remember([Remembered("<m1@x>", "<m1@x>", "c-gone", "gone"),
                Remembered("<m2@x>", "<m2@x>", "c-kept", "kept")])
    assert b.forget_messages(["gone", "never-seen"]) == 1
    assert b.forget_messages(["gone"]) == 0  # idempotent
    ledger = a.ledger("acct", "INBOX", 1)
    assert ledger[1] == LedgerRow(1, ERASED, ERASED)
    assert ledger[2] == LedgerRow(2, "kept", "email")
    assert a.same_contents(["c-gone"]) == {}
    assert a.same_contents(["c-kept"]) == {"c-kept": "kept"}
    assert b.same_contents(["c-gone", "c-kept", "c-kept", "c-never"]) == {"c-kept": "kept"}
    assert b.same_contents([]) == {}


def test_a_content_lookup_of_more_keys_than_it_takes_is_refused(
        imap: tuple[ImapState, ImapState]) -> None:
    a, _ = imap
    a.remember([Remembered("<m@x>", "<m@x>", "c-last", "k")])
    keys = [f"c-{i}" for i in range(MAX_LOOKUP - 1)] + ["c-last"]
    assert a.same_contents(keys + keys[:3]) == {"c-last": "k"}  # 500 distinct: all asked
    with pytest.raises(ValueError, match="501 content keys"):
        a.same_contents(["c-extra", *keys])  # never an answer about only some of them


def test_a_root_lookup_of_more_ids_than_it_takes_is_refused(
        imap: tuple[ImapState, ImapState]) -> None:
    a, _ = imap
    a.remember([Remembered("<last@x>", "<root@x>", None, "k")])
    ids = [f"<{i}@x>" for i in range(MAX_LOOKUP - 1)] + ["<last@x>"]
    assert a.roots(ids + ids[:3]) == {"<last@x>": "<root@x>"}  # 500 distinct: all asked
    with pytest.raises(ValueError, match="501 message ids"):
        a.roots(["<extra@x>", *ids])  # it kept the first 500 and said nothing


def test_a_commit_remembers_its_batch_with_its_ledger_rows_first_writer_winning(
        imap: tuple[ImapState, ImapState]) -> None:
    a, b = imap
    b.remember([Remembered("<old@x>", "<root-b@x>", "c-old", "k-b")])
    a.commit("acct", "INBOX", 7, [LedgerRow(1, "k1", "email"), LedgerRow(2, "k2", "email")], 2,
             [Remembered("<m1@x>", "<m1@x>", "c1", "k1"),
              Remembered("<old@x>", "<root-a@x>", "c-old", "k2")])
    assert b.roots(["<m1@x>", "<old@x>"]) == {"<m1@x>": "<m1@x>", "<old@x>": "<root-b@x>"}
    assert b.same_contents(["c1", "c-old"]) == {"c1": "k1", "c-old": "k-b"}
    assert b.checkpoint("acct", "INBOX") == Checkpoint(7, 2)
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        a.commit("acct", "INBOX", 7, [LedgerRow(3, None, "email")], 3,  # type: ignore[arg-type]
                 [Remembered("<m3@x>", "<m3@x>", "c3", "k3")])  # a ledger row the store refuses
    assert b.roots(["<m3@x>"]) == {}  # the failed commit kept none of it: all or nothing
    assert b.checkpoint("acct", "INBOX") == Checkpoint(7, 2)
    assert set(b.ledger("acct", "INBOX", 7)) == {1, 2}


def test_the_first_thread_root_wins_across_hosts(imap: tuple[ImapState, ImapState]) -> None:
    a, b = imap
    a.remember([Remembered("<r@x>", "<root-a@x>", None, "k1"),
                Remembered("<r@x>", "<root-later@x>", None, "k1")])
    b.remember([Remembered("<r@x>", "<root-b@x>", "c1", "k2")])
    assert b.roots(["<r@x>", "<unknown@x>", "<r@x>"]) == {"<r@x>": "<root-a@x>"}
    assert a.same_contents(["c1"]) == {"c1": "k2"}
    assert a.roots([]) == {}


# ------------------------------------------------------------------------------ calls

def test_the_call_directory_is_shared_and_first_writer_wins(
        conf: settings_mod.Settings) -> None:
    a, b = fleet.open_call_directory(conf), fleet.open_call_directory(conf)
    try:
        one, two = str(uuid.uuid4()), str(uuid.uuid4())
        a.remember("CA1", one)
        b.remember("CA1", two)  # a duplicate callback naming another customer: ignored
        a.remember("CA2", two)
        # from memory only: b learnt the first writer's answer, never its own
        assert a.remembers("CA1", one) and b.remembers("CA1", one)
        assert not b.remembers("CA1", two) and not b.remembers("CA2", two)
        assert b.customer_of("CA1") == uuid.UUID(one)
        assert a.customer_of("CA1") == uuid.UUID(one)
        assert b.customer_of("CA3") is None
        # a batch at once: the first answers stay, and are what the writer caches
        b.remember_many([("CA1", two), ("CA4", two), ("CA5", one)])
        assert b.remembers("CA1", one) and b.remembers("CA4", two) and b.remembers("CA5", one)
        assert a.customers_of(["CA1", "CA3", "CA4", "CA5"]) == {
            "CA1": uuid.UUID(one), "CA4": uuid.UUID(two), "CA5": uuid.UUID(one)}
        assert b.forget_customers([one]) == 2  # type: ignore[attr-defined]
        fresh = fleet.open_call_directory(conf)  # a host that never cached it
        try:
            assert fresh.customer_of("CA1") is None
            assert fresh.customer_of("CA2") == uuid.UUID(two)
        finally:
            fresh.close()  # type: ignore[attr-defined]
    finally:
        a.close()  # type: ignore[attr-defined]
        b.close()  # type: ignore[attr-defined]


def test_the_call_directory_answers_on_new_connections_after_its_were_cut(
        postgres_env: dict[str, str]) -> None:
    """Its pool pings no connection on checkout (a round trip per webhook batch): one
    found broken (a server restart cut it) is replaced and the statement asked again."""
    conf = settings_mod.load(postgres_env)
    calls = fleet.open_call_directory(conf)
    try:
        customer = str(uuid.uuid4())
        calls.remember_many([("CR1", customer)])
        uri = fleet.state_uri(conf)
        assert uri is not None
        with psycopg.connect(uri, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                "datname = current_database() AND application_name = 'touchstream-calls'"
            ).fetchone()
        assert cut is not None and cut[0] >= 1
        # CR1 from memory, CR2 asked of the database on a cut connection first
        assert calls.customers_of(["CR1", "CR2"]) == {"CR1": uuid.UUID(customer)}
        calls.remember_many([("CR2", customer)])
        assert calls.customer_of("CR3") is None
    finally:
        calls.close()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ rate limits

def test_a_client_is_limited_once_across_hosts(conf: settings_mod.Settings) -> None:
    now = [1000.0]
    forms = replace(FormsConfig(secret="s" * 16), rate_limit=3, rate_window_s=60.0,
                    clock=lambda: now[0])
    a, b = fleet.open_rate_limiter(conf, forms), fleet.open_rate_limiter(conf, forms)
    try:
        assert [a.hit("198.51.100.7"), b.hit("198.51.100.7"), a.hit("198.51.100.7")] == [
            None, None, None]
        assert b.hit("198.51.100.7") == pytest.approx(60.0)  # the fourth, on either host
        assert a.hit("198.51.100.7") == pytest.approx(60.0)
        assert a.hit("203.0.113.9") is None  # another client
        now[0] += 60.5  # the window slid past the first hits
        assert b.hit("198.51.100.7") is None
    finally:
        a.close()  # type: ignore[attr-defined]
        b.close()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ console sessions

def test_a_console_session_is_seen_by_every_host_until_it_ends_or_idles(
        conf: settings_mod.Settings) -> None:
    a, b = fleet.open_session_store(conf, 60), fleet.open_session_store(conf, 60)
    now = [1_800_000_000.25]
    a.clock = b.clock = lambda: now[0]
    try:
        first, second = a.start("key-1"), a.start("key-2")
        seen = b.get(first)
        assert seen is not None and seen.key_id == "key-1"
        assert seen.created == now[0]  # full precision: idle and absolute limits in seconds
        assert seen.csrf_ok(a.get(first).csrf)  # type: ignore[union-attr]
        b.end(first)
        assert a.get(first) is None
        now[0] += 61  # idle too long
        assert b.get(second) is None and a.count() == 0
    finally:
        a.close()
        b.close()
