"""Reading the event index: the log position of an event id."""

from __future__ import annotations

from projections.engine import Names
from projections.event_index.projection import EventIndexProjection
from projections.store import Db
from projections.views import LiveView


class EventIndexView(LiveView):
    projection = EventIndexProjection()

    def position_of(self, event_id: str) -> int | None:
        """The position of the event ``event_id``, or None if the index has not seen it."""
        def query(db: Db, t: Names) -> int | None:
            found = db.scalar(f"SELECT position FROM {t.event} WHERE event_id=?", (event_id,))
            return None if found is None else int(found)

        return self.run(query)
