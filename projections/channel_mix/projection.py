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

from domain.customer import Customer
from projections.activity import (
    COUNTED,
    TOUCH_COLUMNS,
    TOUCH_DDL,
    correct,
    insert_touch,
    touch_values,
)
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
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
            "CREATE INDEX {touch}_day ON {touch} (day)",
            "CREATE INDEX {touch}_position ON {touch} (position)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for pos, e in items:
            if type(e) in COUNTED:
                values = touch_values(pos, e)
                insert_touch(db, t, [*values, self._stage(db, t, e)], ("stage",))
            elif isinstance(e, Customer.Registered | Customer.LifecycleStageChanged):
                stage = (e.lifecycle_stage if isinstance(e, Customer.Registered)
                         else e.to_stage)
                db.execute(f"INSERT INTO {t.stage} (event_id, customer_id, position, at_us, "
                           "stage) VALUES (?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
                           (str(e.event_id), customer_id(e), pos, us(e.occurred_at), stage))
            else:
                correct(db, t, e)

    @staticmethod
    def _stage(db: Db, t: Names, e: Customer.Event) -> str:
        row = db.one(f"SELECT stage FROM {t.stage} WHERE customer_id = ? AND at_us <= ? "
                     "ORDER BY at_us DESC, position DESC LIMIT 1",
                     (customer_id(e), us(e.occurred_at)))
        if row is None:  # backfilled before the registration: the stage it started in
            row = db.one(f"SELECT stage FROM {t.stage} WHERE customer_id = ? "
                         "ORDER BY at_us, position LIMIT 1", (customer_id(e),))
        return str(row[0]) if row else UNKNOWN_STAGE
