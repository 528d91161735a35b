"""``Db.executemany`` on every read store: the rows of one statement per row, in order.

On PostgreSQL a plain insert (or one whose conflicts do nothing) goes as one set-based
statement (``unnest`` of column arrays) instead of a statement per row; the rows, their
order and which of two with one key is kept must be what a statement per row gives.
"""

from __future__ import annotations

from typing import Any

from projections.store import Db, ReadStore


class _Recording:
    """The connection, with the calls the store makes on it written down."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.calls: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.calls.append("execute")
        return self._conn.execute(sql, params)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("cursor")
        return self._conn.cursor(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _db(store: ReadStore) -> tuple[Db, _Recording]:
    db = store.connect()
    db.execute("CREATE TABLE rows_t (k TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, "
               "flag INTEGER, raw BYTEA)" if db.dialect == "postgres" else
               "CREATE TABLE rows_t (k TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, "
               "flag INTEGER, raw BLOB)")
    recording = _Recording(db.conn)
    db.conn = recording
    return db, recording


def test_insert_keeps_the_first_row_of_a_key_and_the_order(store: ReadStore) -> None:
    db, recording = _db(store)
    try:
        rows = [(f"k{i % 700:04d}", i, i / 2, i % 2, bytes([i % 256])) for i in range(1000)]
        rows.append(("k-none", None, None, None, None))
        with db.write():
            db.executemany("INSERT INTO rows_t (k, n, x, flag, raw) VALUES (?,?,?,?,?) "
                           "ON CONFLICT (k) DO NOTHING", rows)
        got = db.all("SELECT k, n, x, flag, raw FROM rows_t ORDER BY COALESCE(n, 1000000)")
        assert [tuple(r[:4]) for r in got] == [r[:4] for r in rows[:700]] + [rows[-1][:4]]
        assert bytes(got[0][4]) == b"\x00"
        if db.dialect == "postgres":  # one statement, no cursor's executemany
            assert "cursor" not in recording.calls
    finally:
        db.conn = recording._conn
        db.close()


def test_insert_without_conflict_clause_fails_on_a_duplicate_as_row_by_row(
        store: ReadStore) -> None:
    db, _ = _db(store)
    try:
        failed = False
        try:
            with db.write():
                db.executemany("INSERT INTO rows_t (k, n) VALUES (?,?)",
                               [("a", 1), ("b", 2), ("a", 3)])
        except Exception:  # noqa: BLE001 -- each driver's own integrity error
            failed = True
        assert failed
        assert db.scalar("SELECT COUNT(*) FROM rows_t") == 0
    finally:
        db.close()


def test_upsert_stays_one_statement_per_row(store: ReadStore) -> None:
    db, recording = _db(store)
    try:
        with db.write():
            db.executemany("INSERT INTO rows_t (k, n) VALUES (?,?) "
                           "ON CONFLICT (k) DO UPDATE SET n=rows_t.n+excluded.n",
                           [("a", 1), ("a", 2), ("b", 5)])
        assert db.all("SELECT k, n FROM rows_t ORDER BY k") == [("a", 3), ("b", 5)]
    finally:
        db.conn = recording._conn
        db.close()
