"""The sealed log on every event store: SQLite, PostgreSQL, and EventStoreDB/KurrentDB
(``$all`` commit positions; skipped unless EVENTSTOREDB_URI points at a server)."""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from projections import registry
from projections.engine import Worker
from projections.store import ReadStore
from projections.timeline.view import TimelineView
from replays.audit import access as access_log
from replays.audit.log import read_batches, stored_record
from replays.audit.merkle import leaf_hash
from replays.audit.standalone_verify import check_consistency, check_inclusion
from replays.audit.verify import verify_log
from tests.conftest import store_env
from touchstream import settings as settings_mod
from touchstream.audit_wiring import open_audit
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.bootstrap import Dependencies
from touchstream.cli.audit import _locate, consistency, prove


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "kurrentdb"])
def test_seals_cover_the_log_in_position_order_and_prove_what_they_cover(
        kind: str, tmp_path: Path) -> None:
    settings = settings_mod.load(store_env(kind, tmp_path / "data"))
    rnd = random.Random(5)
    with open_audit(settings) as audit:
        base = audit.log.max_notification_id()  # a shared server may hold events already
        add_touchpoints(audit.hub, new_customer(audit.hub, "First Ltd", rnd), 12, rnd)
        first = audit.seal()
        add_touchpoints(audit.hub, new_customer(audit.hub, "Second Ltd", rnd), 7, rnd)
        second = audit.seal()
        records = [n for batch in read_batches(audit.log, None) for n in batch]
        positions = [int(n.id) for n in records]
        assert positions == sorted(positions) and second.tree_size == len(records)
        assert second.last_position == positions[-1]
        assert first.tree_size < second.tree_size
        key = audit.key()
        assert verify_log(audit.seals, audit.log, key.public_key).ok

        ours = [n for n in records if base is None or int(n.id) > base]
        doc = prove(audit, int(ours[3].id))
        assert doc["leaf_hash"] == leaf_hash(stored_record(ours[3])).hex()
        assert check_inclusion(doc, key.public_key).startswith("OK")
        assert check_consistency(consistency(audit, first.seal, second.seal),
                                 key.public_key).startswith("OK")


class _CountingMapper:
    """The hub's mapper, counting the events it decodes."""

    def __init__(self, mapper: Any) -> None:
        self.mapper = mapper
        self.decoded = 0

    def to_domain_event(self, stored: Any) -> Any:
        self.decoded += 1
        return self.mapper.to_domain_event(stored)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_proving_an_event_by_id_decodes_only_that_event(kind: str, tmp_path: Path) -> None:
    settings = settings_mod.load(store_env(kind, tmp_path / "data"))
    rnd = random.Random(9)
    with open_audit(settings) as audit:
        customer = new_customer(audit.hub, "Located Ltd", rnd)
        add_touchpoints(audit.hub, customer, 40, rnd)
        audit.seal()
        deps = Dependencies(settings, hub=audit.hub)
        db = deps.read_store.connect()
        try:
            Worker(db, deps.event_source(),
                   [(p, None) for p in registry.select(["timeline", "event_index"])]).catch_up()
        finally:
            db.close()
        page = TimelineView(deps.read_store).page(str(customer.id), limit=50)
        wanted = page.items[17]
        counting = _CountingMapper(audit.hub.mapper)
        hub, audit.hub = audit.hub, SimpleNamespace(mapper=counting)
        try:
            position = _locate(audit, argparse.Namespace(event_id=wanted["event_id"]))
        finally:
            audit.hub = hub
        assert position == wanted["position"] and counting.decoded == 1
        doc = prove(audit, position)
        assert check_inclusion(doc, audit.key().public_key).startswith("OK")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_writers_at_once_keep_one_linear_chain(kind: str, tmp_path: Path) -> None:
    # As two uvicorn workers do: each process has its own recorder (writer thread and
    # remembered head); both append at once to the one chain of the read store.
    store = ReadStore(settings_mod.load(store_env(kind, tmp_path / "data")).read_store)
    writers = [access_log.AccessRecorder(store), access_log.AccessRecorder(store)]

    def reads(recorder: access_log.AccessRecorder, first: int) -> None:
        async def burst(k: int) -> None:
            await asyncio.gather(*(recorder.arecord(_access_entry(k + j)) for j in range(8)))

        for k in range(first, first + 40, 8):
            asyncio.run(burst(k))

    threads = [threading.Thread(target=reads, args=(w, 100 * n)) for n, w in enumerate(writers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for w in writers:
            w.close()
    db = store.connect()
    try:
        found = access_log.records(db)
        assert [r.seq for r in found] == list(range(1, 81))
        assert sorted(r.entry.key_id for r in found) == sorted(
            f"key-{k}" for k in [*range(40), *range(100, 140)])
        assert access_log.verify_chain(db) == []
    finally:
        db.close()


def _access_entry(k: int) -> access_log.AccessEntry:
    return access_log.AccessEntry("2026-01-01T00:00:00+00:00", f"key-{k}", "agent",
                                  "GET /customers/{customer_id}/timeline", f"c-{k}", f"r-{k}",
                                  "127.0.0.1")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_batches_of_any_size_and_any_text_are_stored_as_given_and_chained(
        kind: str, tmp_path: Path) -> None:
    store = ReadStore(settings_mod.load(store_env(kind, tmp_path / "data")).read_store)
    db = store.connect()
    try:
        access_log.ensure_schema(db)
        odd = access_log.AccessEntry("2026-01-01T00:00:00+00:00", 'clé "ß" \\ \u2028 ☎',
                                     "agent", "GET /customers/{customer_id}/timeline?q=%é",
                                     "c-odd", "r-\t\n", "::1")
        wanted = [odd]
        after = access_log.append(db, [odd])[-1]
        for size in (1, 7, 51, access_log.AccessRecorder.MAX_BATCH):
            batch = [_access_entry(len(wanted) + k) for k in range(size)]
            after = access_log.append(db, batch, after=(after.seq, after.hash))[-1]
            wanted += batch
        found = access_log.records(db, limit=len(wanted) + 1)
        assert [r.entry for r in found] == wanted
        assert [r.seq for r in found] == list(range(1, len(wanted) + 1))
        assert access_log.verify_chain(db) == []
    finally:
        db.close()


def test_postgres_appends_of_every_size_share_one_statement_prepared_again_if_gone(
        tmp_path: Path) -> None:
    # One statement text whatever the batch size, prepared once on the connection: a
    # multi-row VALUES was a statement per size, converted by psycopg at every batch.
    store = ReadStore(settings_mod.load(store_env("postgres", tmp_path / "data")).read_store)
    db = store.connect()
    try:
        access_log.ensure_schema(db)
        head = access_log.append(db, [_access_entry(0)])[-1]
        for size in (1, 2, 9, 60):
            batch = [_access_entry(k) for k in range(size)]
            head = access_log.append(db, batch, after=(head.seq, head.hash))[-1]
        names = [r[0] for r in db.all("SELECT name FROM pg_prepared_statements")]
        assert names == ["touchstream_audit_append"]
        db.execute("DEALLOCATE ALL")  # as a pooler or an operator may do
        head = access_log.append(db, [_access_entry(99)], after=(head.seq, head.hash))[-1]
        assert head.seq == 74 and access_log.verify_chain(db) == []
        # Inside a transaction the failure aborted it: its own error, no retry there.
        probe = "INSERT INTO prepared_probe VALUES ($1)"
        db.execute("CREATE TEMP TABLE prepared_probe (v TEXT)")
        db.run_prepared("probe", probe, ["a"])
        db.execute("DEALLOCATE ALL")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName), db.write():
            db.run_prepared("probe", probe, ["b"])
        db.run_prepared("probe", probe, ["c"])
        assert [r[0] for r in db.all("SELECT v FROM prepared_probe")] == ["a", "c"]
    finally:
        db.close()
