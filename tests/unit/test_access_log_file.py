"""On SQLite the access log lives in its own file (``audit.db``): its commits leave the
read store's file alone, and a data folder of the older layout (the access log inside
``read.db``) is moved over once, crash-safely, with its chain and seals still valid."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from projections.store import Db, ReadStore
from replays.audit import access as access_log
from replays.audit.keys import load_key
from replays.audit.seals import SealStore, seal_log
from replays.audit.verify import verify_log


def _entry(k: int) -> access_log.AccessEntry:
    return access_log.AccessEntry("2026-01-01T00:00:00+00:00", f"key-{k}", "agent",
                                  "GET /customers/{customer_id}/timeline", f"c-{k}", f"r-{k}",
                                  "127.0.0.1")


def _old_layout(folder: Path, records: int = 12) -> None:
    """A read store as written before ``audit.db``: the access log and its seals (made
    by today's code in a scratch folder) copied into ``read.db`` itself, with the same
    DDL, through a plain connection; the seal key in ``folder``."""
    made = ReadStore(f"sqlite:///{folder / 'scratch' / 'read.db'}").connect()
    try:
        access_log.ensure_schema(made)
        access_log.append(made, [_entry(k) for k in range(records - 2)])
        seals = SealStore(made, prefix=access_log.seal_prefix(made))
        seals.ensure_schema()
        seal_log(seals, access_log.AccessLog(made), load_key(folder, create=True))
        access_log.append(made, [_entry(k) for k in range(records - 2, records)])  # unsealed
    finally:
        made.close()
    old = sqlite3.connect(folder / "read.db", isolation_level=None)
    try:
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("ATTACH DATABASE ? AS made", (str(folder / "scratch" / "audit.db"),))
        for (sql,) in old.execute("SELECT sql FROM made.sqlite_master WHERE sql IS NOT NULL "
                                  "ORDER BY type DESC").fetchall():  # tables, then indexes
            old.execute(sql)
        for name in access_log.TABLES:
            old.execute(f"INSERT INTO main.{name} SELECT * FROM made.{name}")
        old.execute("DETACH DATABASE made")
    finally:
        old.close()


def _tables(db: Db, schema: str) -> set[str]:
    return {r[0] for r in db.all(f"SELECT name FROM {schema}.sqlite_master WHERE type='table'")}


def _check_moved(folder: Path, records: int) -> Db:
    db = ReadStore(f"sqlite:///{folder / 'read.db'}").connect()
    assert not _tables(db, "main") & set(access_log.TABLES)
    assert set(access_log.TABLES) <= _tables(db, "audit")
    assert [r.seq for r in access_log.records(db)] == list(range(1, records + 1))
    assert access_log.verify_chain(db) == []
    seals = SealStore(db, prefix=access_log.seal_prefix(db))
    assert [s.tree_size for s in seals.seals()] == [10]  # sealed before the move
    report = verify_log(seals, access_log.AccessLog(db), load_key(folder).public_key)
    assert report.findings == []
    return db


def test_an_old_layout_is_moved_into_the_access_log_file_once(tmp_path: Path) -> None:
    _old_layout(tmp_path)
    db = ReadStore(f"sqlite:///{tmp_path / 'read.db'}").connect()
    try:
        assert access_log.move_into_audit_file(db) == list(access_log.TABLES)
        access_log.ensure_schema(db)
    finally:
        db.close()
    db = _check_moved(tmp_path, 12)
    try:
        version = db.scalar("PRAGMA audit.data_version")
        assert access_log.move_into_audit_file(db) == []  # a re-open does nothing more
        access_log.ensure_schema(db)
        assert [r.seq for r in access_log.records(db)] == list(range(1, 13))
        assert db.scalar("PRAGMA audit.data_version") == version
    finally:
        db.close()
    recorder = access_log.AccessRecorder(ReadStore(f"sqlite:///{tmp_path / 'read.db'}"))
    try:
        recorder.record(_entry(99))  # the chain goes on from the moved head
    finally:
        recorder.close()
    _check_moved(tmp_path, 13).close()


class _KilledAtDrop(Db):
    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql.startswith("DROP TABLE"):
            raise KeyboardInterrupt("killed between the copy and the drop")
        return super().execute(sql, params)


def test_a_move_killed_between_copy_and_drop_is_finished_by_the_next_open(
        tmp_path: Path) -> None:
    _old_layout(tmp_path)
    plain = ReadStore(f"sqlite:///{tmp_path / 'read.db'}").connect()
    killed = _KilledAtDrop("sqlite", plain.conn)
    with pytest.raises(KeyboardInterrupt):
        access_log.move_into_audit_file(killed)
    assert set(access_log.TABLES) <= _tables(plain, "main") & _tables(plain, "audit")
    plain.close()
    recorder = access_log.AccessRecorder(ReadStore(f"sqlite:///{tmp_path / 'read.db'}"))
    try:
        recorder.record(_entry(99))  # its first connection finishes the move, copying nothing twice
    finally:
        recorder.close()
    _check_moved(tmp_path, 13).close()


def test_two_different_logs_are_never_merged(tmp_path: Path) -> None:
    _old_layout(tmp_path)
    db = ReadStore(f"sqlite:///{tmp_path / 'read.db'}").connect()
    try:
        ddl = db.scalar("SELECT sql FROM main.sqlite_master WHERE name='audit_access'")
        db.execute(ddl.replace("CREATE TABLE audit_access", "CREATE TABLE audit.audit_access"))
        db.execute("INSERT INTO audit.audit_access SELECT * FROM main.audit_access")
        db.execute("UPDATE audit.audit_access SET client = '10.9.9.9' WHERE seq = 3")
        with pytest.raises(access_log.AccessLogError, match="differ"):
            access_log.ensure_schema(db)
        assert "audit_access" in _tables(db, "main")  # nothing dropped
    finally:
        db.close()


def test_an_access_record_commits_to_its_own_file_not_the_read_stores(tmp_path: Path) -> None:
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    reader = store.connect()
    recorder = access_log.AccessRecorder(store)
    try:
        recorder.record(_entry(0))
        assert reader.scalar("PRAGMA audit.synchronous") == 2  # FULL, as the event store
        assert reader.scalar("PRAGMA audit.journal_mode") == "wal"
        main, audit = (reader.scalar("PRAGMA main.data_version"),
                       reader.scalar("PRAGMA audit.data_version"))
        recorder.record(_entry(1))
        # data_version moves when another connection committed to that file: a commit to
        # read.db would make this connection drop its page cache of read.db
        assert reader.scalar("PRAGMA main.data_version") == main
        assert reader.scalar("PRAGMA audit.data_version") != audit
    finally:
        recorder.close()
        reader.close()
    assert (tmp_path / "audit.db").exists()
