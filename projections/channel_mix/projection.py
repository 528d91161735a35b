"""The channel-mix read model: every touchpoint with its day, channel, direction, queue
and the lifecycle stage its customer was in when it happened.

``touch`` keeps one row per counted touchpoint (``projections.activity``) — the view
counts them per day × channel × direction (× queue or × stage) and rolls days up into
weeks and months at read time, so the figures and the events behind them come from the
same rows. ``stage`` is the model's own state: every lifecycle stage change with its
time, so a touchpoint gets the stage of its moment even when it arrives late (a stage
change arriving after touchpoints it precedes does not restate them: the row keeps what
the log said when it was applied, the same live and rebuilt). Nothing personal is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.customer import Customer
from projections.activity import (
    COUNTED,
    TOUCH_COLUMNS,
    TOUCH_DDL,
    correct,
    insert_touches,
    touch_values,
)
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, us
from projections.store import Db

UNKNOWN_STAGE = "(unknown)"


class ChannelMixProjection(Projection):
    name = "channel_mix"
    tables = (
        Table("stage", ("event_id",), ("event_id", "customer_id", "position", "at_us",
                                       "stage")),
        Table("touch", ("event_id",), (*TOUCH_COLUMNS, "stage")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {stage} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "position BIGINT NOT NULL, at_us BIGINT NOT NULL, stage TEXT NOT NULL)"),
            "CREATE INDEX {stage}_customer ON {stage} (customer_id, at_us)",
            TOUCH_DDL.replace("{extra}", ", stage TEXT NOT NULL"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        # Only the view reads by them: a rebuild builds them once after the fill.
        return [
            "CREATE INDEX {touch}_day ON {touch} (day)",
            "CREATE INDEX {touch}_position ON {touch} (position)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # A run of touchpoints is inserted in one executemany before any other event;
        # each customer's stage changes are read once per batch (only a stage event
        # changes them, and it drops the customer's entry).
        pending: list[list[Any]] = []
        stages: dict[str, list[tuple[int, int, str]]] = {}
        for pos, e in items:
            if type(e) in COUNTED:
                values = touch_values(pos, e)
                known = stages.get(values[1])
                if known is None:
                    known = stages[values[1]] = sorted(
                        (int(r[0]), int(r[1]), str(r[2])) for r in db.all(
                            f"SELECT at_us, position, stage FROM {t.stage} "
                            "WHERE customer_id = ?", (values[1],)))
                values.append(_stage_at(known, values[3]))
                pending.append(values)
                continue
            if pending:
                insert_touches(db, t, pending, ("stage",))
                pending = []
            if isinstance(e, Customer.Registered | Customer.LifecycleStageChanged):
                stage = (e.lifecycle_stage if isinstance(e, Customer.Registered)
                         else e.to_stage)
                stages.pop(customer_id(e), None)
                db.execute(f"INSERT INTO {t.stage} (event_id, customer_id, position, at_us, "
                           "stage) VALUES (?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
                           (event_id_text(e), customer_id(e), pos, us(e.occurred_at), stage))
            else:
                correct(db, t, e)
        insert_touches(db, t, pending, ("stage",))


def _stage_at(known: Sequence[tuple[int, int, str]], at: int) -> str:
    """The stage of the latest change at or before ``at`` (by time, then log position);
    before the first one (a touchpoint backfilled before the registration), the stage
    it started in."""
    found = None
    for at_us, _, stage in known:  # sorted by (at_us, position)
        if at_us > at:
            break
        found = stage
    if found is None:
        return known[0][2] if known else UNKNOWN_STAGE
    return found
