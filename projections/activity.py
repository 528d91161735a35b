"""What the activity read models (channel mix, response times) share: which events are
touchpoints, and the one ``touch`` table shape they keep with both times of each.

A touchpoint row keeps ``occurred_us`` (when it happened) and ``recorded_us`` (when the
hub learnt of it), and ``voided_us`` (when a ``TouchpointVoided`` was recorded for it):
a figure *as of* a day counts the rows recorded before that day ended and not voided by
then, straight from the rows (no replay). A ``TouchpointCorrected`` that moves a
touchpoint's time moves the row (as-of figures read the corrected time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.analytics import day_of
from domain.customer import TOUCHPOINT_EVENTS, Customer
from projections.engine import Names
from projections.events import customer_id, event_id_text, us
from projections.store import Db

#: Touchpoints a figure counts: each contact once. Call steps are parts of a call; an
#: outbound email counts when it went out (``EmailSent``), not when queued, failed or
#: bounced.
COUNTED: frozenset[type] = frozenset(TOUCHPOINT_EVENTS) - {
    Customer.CallStepRecorded, Customer.EmailQueued, Customer.EmailSendFailed,
    Customer.EmailOutcomeUnknown, Customer.EmailBounced}
NO_QUEUE = "(none)"

TOUCH_COLUMNS = ("event_id", "customer_id", "position", "occurred_us", "recorded_us",
                 "day", "channel", "direction", "queue", "voided_us")
TOUCH_DDL = ("CREATE TABLE {touch} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "position BIGINT NOT NULL, occurred_us BIGINT NOT NULL, "
             "recorded_us BIGINT NOT NULL, day TEXT NOT NULL, channel TEXT NOT NULL, "
             "direction TEXT NOT NULL, queue TEXT NOT NULL, voided_us BIGINT{extra})")


def day_text(micros: int) -> str:
    """The UTC day of a moment as ``YYYY-MM-DD`` (remembered per day: most events of a
    batch fall on a few days, and building the date was a tenth of a touch row)."""
    day = micros // _DAY_US
    text = _DAY_TEXT.get(day)
    if text is None:
        if len(_DAY_TEXT) >= 65536:
            _DAY_TEXT.clear()
        text = _DAY_TEXT[day] = day_of(micros).isoformat()
    return text


_DAY_US = 86_400_000_000
_DAY_TEXT: dict[int, str] = {}


def touch_values(pos: int, e: Customer.Event) -> list[Any]:
    """The ``TOUCH_COLUMNS`` of a counted touchpoint."""
    at = us(e.occurred_at)
    # ``getattr(e, "queue", None)`` without its raise-and-catch where neither the class
    # nor the event has the name (emails, visits…): the event's own value otherwise.
    cls = type(e)
    on_class = _HAS_QUEUE.get(cls)
    if on_class is None:
        on_class = _HAS_QUEUE[cls] = hasattr(cls, "queue")
    queue = (getattr(e, "queue", None) if on_class else e.__dict__.get("queue")) or NO_QUEUE
    return [event_id_text(e), customer_id(e), pos, at, us(e.timestamp), day_text(at),
            e.channel, e.direction, queue, None]


_HAS_QUEUE: dict[type, bool] = {}


def correct(db: Db, t: Names, e: Customer.Event) -> bool:
    """Apply a void or a time correction to the ``touch`` table; False for other events."""
    if isinstance(e, Customer.TouchpointVoided):
        db.execute(f"UPDATE {t.touch} SET voided_us = ? WHERE event_id = ? "
                   "AND voided_us IS NULL", (us(e.recorded_at), e.voided_event_id))
        return True
    if isinstance(e, Customer.TouchpointCorrected):
        if e.corrected_occurred_at is not None:
            at = us(e.corrected_occurred_at)
            db.execute(f"UPDATE {t.touch} SET occurred_us = ?, day = ? WHERE event_id = ?",
                       (at, day_text(at), e.corrected_event_id))
        return True
    return False


def known(alias: str, known_before_us: int | None) -> tuple[str, list[Any]]:
    """The condition on ``alias``'s touch rows for what was known (``as_of``) or is now."""
    if known_before_us is None:
        return f" AND {alias}.voided_us IS NULL", []
    condition = (f" AND {alias}.recorded_us < ? AND ({alias}.voided_us IS NULL "
                 f"OR {alias}.voided_us >= ?)")
    return condition, [known_before_us, known_before_us]


def insert_touches(db: Db, t: Names, rows: Sequence[Sequence[Any]],
                   extra: Sequence[str] = ()) -> None:
    """Insert touch rows in order (one ``executemany``: a rebuild inserts a run of
    touchpoints at once); a row whose event is already there is skipped."""
    cols = [*TOUCH_COLUMNS, *extra]
    db.executemany(f"INSERT INTO {t.touch} ({', '.join(cols)}) VALUES "
                   f"({', '.join('?' * len(cols))}) ON CONFLICT (event_id) DO NOTHING", rows)
