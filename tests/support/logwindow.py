"""The part of a shared event log one test wrote.

An EventStoreDB server has one ``$all`` for every test that ever wrote to it,
and other tests' customer events are sealed with data keys kept in their own
(discarded) read stores: a read model following ``$all`` from its start would
stop at the first of them as damaged. ``LogSince`` reads the log only after
the position it had when the test began, through the real recorder (polling
and subscription alike). On a fresh SQL store the floor is 0 and nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.engine import EventSource


class LogSince(EventSource):
    """``source``'s log after ``floor``."""

    def __init__(self, source: EventSource, floor: int) -> None:
        super().__init__(source.recorder, source.mapper, poll_interval=source.poll_interval,
                         subscribe=source.subscribes)
        self.floor = floor

    def read(self, after: int, limit: int, stop: int | None = None) -> Sequence[Any]:
        return super().read(max(after, self.floor), limit, stop)

    def subscription(self, after: int) -> Any:
        return super().subscription(max(after, self.floor))
