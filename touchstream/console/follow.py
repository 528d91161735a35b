"""The screen-pop across processes: call steps read back from the event log.

A call's webhook reaches one ``serve`` worker of one host; the agent's screen-pop page
may be open on any other. ``CallFollower`` (a service of ``touchstream serve``) follows
the event log from its head at start and hands each ``Customer.CallStepRecorded`` to
this process's ``CallFeed`` (``announce``), which sends it to the open pages — once:
a step this process published itself is not sent again.

It wakes on PostgreSQL's LISTEN/NOTIFY (the event store's own channel) and polls the
log's head every ``POLL_S`` on SQLite; on EventStoreDB the recorder's position poll.
While no page is open it only moves its position to the head every ``IDLE_S``,
decoding nothing (a step is news for a few seconds: nobody wants yesterday's calls
popping up). It stops
between two reads. A failure is logged and retried after ``RETRY_S``: the screen-pop
is a convenience, the calls are in the log whatever happens here.
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress

from domain.customer import Customer
from projections.engine import EventSource
from touchstream.bootstrap import Dependencies
from touchstream.console.feed import CallFeed, RingingCall

log = logging.getLogger("touchstream.console.follow")
POLL_S = 0.05
IDLE_S = 0.5
RETRY_S = 2.0
BATCH = 500
_CONSUMES = (Customer.CallStepRecorded,)


def ringing_call(event: Customer.CallStepRecorded) -> RingingCall:
    """The screen-pop's view of a recorded step: the caller is the far end of the call."""
    number = event.from_number if event.direction == "inbound" else event.to_number
    return RingingCall(event.call_id, event.step, number, event.direction, event.queue)


class CallFollower:
    """Follows the log's call steps into one ``CallFeed`` on a thread (start/stop)."""

    def __init__(self, deps: Dependencies, feed: CallFeed | None = None) -> None:
        self.deps = deps
        self.feed = feed or deps.call_feed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="screen-pop-follower",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _source(self) -> EventSource:
        settings = self.deps.settings
        hub = self.deps.hub
        listen = settings.event_store if settings.event_store_kind == "postgres" else None
        return EventSource(hub.recorder, hub.mapper, listen_uri=listen, poll_interval=POLL_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            source = None
            try:
                source = self._source()
                self._follow(source)
            except Exception:
                log.warning("screen-pop follower failed; retrying", exc_info=True)
                self._stop.wait(RETRY_S)
            finally:
                if source is not None:
                    with suppress(Exception):
                        source.close()

    def _follow(self, source: EventSource) -> None:
        position = source.head()
        while not self._stop.is_set():
            if not self.feed.listeners:  # nobody to tell: keep up with the head, slowly
                position = source.head()
                self._stop.wait(IDLE_S)
                continue
            notifications = source.read(position, BATCH)
            if notifications:
                position = int(notifications[-1].id)
                for _, event in source.decode(notifications, _CONSUMES):
                    self.feed.announce(ringing_call(event))
                continue
            source.wait(0.5)
