"""Event recorders: the library's SQLite/PostgreSQL recorders plus a source-key table.

The source-key rows are written in the same transaction as the events, so a
key can never be recorded twice and an event never lacks its key. Plugged in
through the library's ``APPLICATION_RECORDER_TOPIC`` setting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from commands.ports import SOURCE_KEYS_TABLE, KeyRow

# (source key, seq, event id) — the event is ``stored_events[seq]`` — or
# (source key, seq, event id, index) when one save carries several keys (bulk import).
SourceKeys = Sequence[tuple[str, int, UUID] | tuple[str, int, UUID, int]]


def _key_rows(keys: SourceKeys, stored_events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    rows = []
    for entry in keys:
        key, seq, event_id = entry[0], entry[1], entry[2]
        stored = stored_events[entry[3] if len(entry) > 3 else seq]
        rows.append((key, seq, stored.originator_id, stored.originator_version, event_id))
    return rows


class SQLiteKeyedRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {SOURCE_KEYS_TABLE} ("
            "source_key TEXT NOT NULL, seq INTEGER NOT NULL, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "event_id TEXT NOT NULL, PRIMARY KEY (source_key, seq)) WITHOUT ROWID",
        ]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        ids = super()._insert_events(c, stored_events, **kwargs)
        keys: SourceKeys = kwargs.get("source_keys") or ()
        if keys:
            rows = [
                (key, seq, _oid(oid), version, str(event_id))
                for key, seq, oid, version, event_id in _key_rows(keys, stored_events)
            ]
            c.executemany(f"INSERT INTO {SOURCE_KEYS_TABLE} VALUES (?,?,?,?,?)", rows)
        return ids

    def lookup_source_keys(self, keys: list[str]) -> dict[str, list[KeyRow]]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        sql = (
            f"SELECT k.source_key, k.originator_id, k.originator_version, k.event_id, e.rowid "
            f"FROM {SOURCE_KEYS_TABLE} k LEFT JOIN {self.events_table_name} e "
            "ON e.originator_id = k.originator_id AND e.originator_version = k.originator_version "
            f"WHERE k.source_key IN ({marks}) ORDER BY k.source_key, k.seq"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, keys)
            return _group(c.fetchall())

    def bulk_connection(self) -> sqlite3.Connection:
        """A raw connection for benchmarks that compare against the ceiling."""
        return sqlite3.connect(self.datastore.pool.db_name, uri=True)


class PostgresKeyedRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._uuid_ids = self.datastore.originator_id_type == "uuid"
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "source_key text NOT NULL, seq int NOT NULL, "
                "originator_id text NOT NULL, originator_version bigint NOT NULL, "
                "event_id uuid NOT NULL, PRIMARY KEY (source_key, seq))"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(SOURCE_KEYS_TABLE))
        )
        self._insert_keys = SQL(
            "INSERT INTO {schema}.{table} (source_key, seq, originator_id, originator_version, "
            "event_id) SELECT * FROM unnest(%s::text[], %s::int[], %s::text[], %s::bigint[], "
            "%s::uuid[])"  # one statement however many keys (a bulk save carries hundreds)
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(SOURCE_KEYS_TABLE))
        self._select_keys = SQL(
            "SELECT k.source_key, k.originator_id, k.originator_version, k.event_id, "
            "e.notification_id FROM {schema}.{table} k LEFT JOIN {schema}.{events} e "
            # Cast the key's side, not the events' side, so the join can use the
            # events' primary key (a cast on the indexed column scans every stream).
            f"ON e.originator_id = k.originator_id{'::uuid' if self._uuid_ids else ''} "
            "AND e.originator_version = k.originator_version "
            "WHERE k.source_key = ANY(%s) ORDER BY k.source_key, k.seq"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(SOURCE_KEYS_TABLE),
            events=Identifier(self.events_table_name),
        )

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs first in the library's pipelined transaction, before the table
        # lock: a concurrent duplicate waits on the key's index entry, then fails.
        keys: SourceKeys = kwargs.get("source_keys") or ()
        if keys:
            rows = _key_rows(keys, stored_events)
            curs.execute(self._insert_keys, (
                [r[0] for r in rows], [r[1] for r in rows], [str(r[2]) for r in rows],
                [r[3] for r in rows], [r[4] for r in rows],
            ))

    def lookup_source_keys(self, keys: list[str]) -> dict[str, list[KeyRow]]:
        if not keys:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_keys, (keys,))
            rows = [
                (r["source_key"], r["originator_id"], r["originator_version"],
                 str(r["event_id"]), r["notification_id"])
                for r in curs.fetchall()
            ]
        return _group(rows)


def _oid(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def _group(rows: Sequence[Any]) -> dict[str, list[KeyRow]]:
    out: dict[str, list[KeyRow]] = {}
    for key, oid, version, event_id, position in rows:
        out.setdefault(key, []).append(
            KeyRow(originator_id=_uuid_or_str(oid), version=version,
                   event_id=UUID(str(event_id)), position=position)
        )
    return out


def _uuid_or_str(oid: str) -> Any:
    try:
        return UUID(oid)
    except ValueError:
        return oid
