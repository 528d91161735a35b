"""The event index: every event's id and its position in the log.

The auditor names an event by its id (from a subject export, a timeline entry or
the Parquet export) and ``touchstream audit prove EVENT_ID`` needs its log
position to build the inclusion proof. The timeline only indexes touchpoints;
this read model indexes every event of every stream (customers and the records:
accounts, campaigns, technicians), so the lookup is one primary-key read on any
log size. Nothing personal is stored: two ids and a number.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.customer import Customer
from domain.records import Record
from projections.engine import Names, Projection, Table
from projections.events import Item, event_id_text
from projections.store import Db


class EventIndexProjection(Projection):
    name = "event_index"
    consumes = (Customer.Event, Record.Event)
    tables = (Table("event", ("event_id",), ("event_id", "position")),)

    def ddl(self, dialect: str) -> list[str]:
        return ["CREATE TABLE {event} (event_id TEXT PRIMARY KEY, position BIGINT NOT NULL)"]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        rows = [(event_id_text(e), pos) for pos, e in items]
        if rows:
            db.executemany(f"INSERT INTO {t.event} (event_id, position) VALUES (?,?) "
                           "ON CONFLICT (event_id) DO NOTHING", rows)
