"""The live call feed: call steps to every open screen-pop page of this process.

Two sources, one fan-out:

* ``publish`` is the phone channel's ``StepObserver`` (``channels.phone.steps``): it is
  called on the event loop (or any thread) before a step this process received is
  recorded, never blocks and never raises — the quickest news;
* ``announce`` is called by ``touchstream.console.follow`` for each call step recorded
  in the event log, by any process of the fleet (another ``serve`` worker, another
  host): a call that came in elsewhere pops here too.

A step is sent once per process: the last ``SEEN_MAX`` (call, step) pairs are
remembered, so a step published here and then read back from the log is not sent
twice. Each subscriber (one per open ``/console/screen-pop`` stream) has a bounded
queue on its own event loop; a subscriber that falls ``QUEUE_MAX`` steps behind loses
the oldest (a ringing phone is only news for a few seconds).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass

from commands import messages as m

QUEUE_MAX = 100
SEEN_MAX = 4096


@dataclass(frozen=True)
class RingingCall:
    """One call step worth showing: the call, its step and the caller's number."""

    call_id: str
    step: str
    number: str | None
    direction: str
    queue: str | None

    @classmethod
    def of(cls, cmd: m.RecordCallStep) -> RingingCall:
        number = cmd.from_number if cmd.direction == "inbound" else cmd.to_number
        return cls(cmd.call_id, cmd.step, number, cmd.direction, cmd.queue)


class Subscription:
    def __init__(self, feed: CallFeed, loop: asyncio.AbstractEventLoop) -> None:
        self.feed = feed
        self.loop = loop
        self.queue: asyncio.Queue[RingingCall] = asyncio.Queue(QUEUE_MAX)

    def offer(self, call: RingingCall) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(call)

    async def next(self, timeout: float) -> RingingCall | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.feed.unsubscribe(self)


class CallFeed:
    """Fan-out of call steps to the open screen-pop streams of this process."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def subscribe(self) -> Subscription:
        """A new subscription on the running event loop (call from a coroutine)."""
        sub = Subscription(self, asyncio.get_running_loop())
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, cmd: m.RecordCallStep) -> None:
        """A step this process received (before it is recorded)."""
        self.announce(RingingCall.of(cmd))

    def announce(self, call: RingingCall) -> None:
        """A step from anywhere; sent unless this (call, step) was sent already."""
        key = (call.call_id, call.step)
        with self._lock:
            if key in self._seen:
                return
            self._seen[key] = None
            if len(self._seen) > SEEN_MAX:
                self._seen.popitem(last=False)
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, call)
            except RuntimeError:  # its loop is closed: the page went away
                self.unsubscribe(sub)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._subs)
