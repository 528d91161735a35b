"""The response-times read model: every inbound and outbound touchpoint of a customer
with both its times, indexed to find the first outbound answer after an inbound one.

The pairing is done at read time (``view``): for an inbound touchpoint, the first
outbound touchpoint to the same customer, on any channel, after it and within
``RESPONSE_HORIZON_DAYS``. Kept that way so an ``as_of`` day is answered from the rows
exactly — the response known then may be another than the one known now (a late-synced
outbound) — and so a changed business-hours calendar restates every figure without a
rebuild (business time is ``domain.analytics.business_seconds`` over the SLA calendar
of the inbound touchpoint's queue, in the view).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.activity import (
    COUNTED,
    TOUCH_COLUMNS,
    TOUCH_DDL,
    correct,
    insert_touches,
    touch_values,
)
from projections.engine import Names, Projection, Table
from projections.events import Item
from projections.store import Db


class ResponseTimesProjection(Projection):
    name = "response_times"
    tables = (Table("touch", ("event_id",), TOUCH_COLUMNS),)

    def ddl(self, dialect: str) -> list[str]:
        return [
            TOUCH_DDL.replace("{extra}", ""),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        # Only the view reads by them: a rebuild builds them once after the fill.
        return [
            "CREATE INDEX {touch}_answer ON {touch} (customer_id, direction, occurred_us)",
            "CREATE INDEX {touch}_inbound ON {touch} (direction, occurred_us)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        pending: list[list[Any]] = []  # a run of touchpoints, inserted before anything else
        for pos, e in items:
            if type(e) in COUNTED:
                if e.direction in ("inbound", "outbound"):
                    pending.append(touch_values(pos, e))
                continue
            if pending:
                insert_touches(db, t, pending)
                pending = []
            correct(db, t, e)
        insert_touches(db, t, pending)
