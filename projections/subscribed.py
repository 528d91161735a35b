"""Following the log through a catch-up subscription (EventStoreDB/KurrentDB ``$all``).

The library's recorders offer ``subscribe(gt=position)``: an iterator of
notifications after ``position``, ordered by their position in the log (the
commit position on EventStoreDB), that first catches up and then blocks for
new events. ``SubscriptionFeed`` pulls one in its own thread into a bounded
queue so the projection worker can take it in batches (one transaction per
batch, as when polling) and stop between batches: the subscription only
delivers; what was applied is decided by the tracking rows in the read store,
so a restart resumes from the tracked position and an event delivered twice
(at-least-once, or after a reconnect) is skipped under the position check.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

STOP_WAIT_S = 10.0  # a stopped subscription ends its blocking read well within this


class SubscriptionEndedError(Exception):
    """Raised when a subscription stops delivering without being asked to (the server
    went away, the connection dropped): the worker starts again from its positions."""


class SubscriptionFeed:
    """Hands a running subscription's notifications out in batches, in log order."""

    def __init__(self, subscription: Any, batch: int) -> None:
        self._subscription = subscription
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(2 * batch, 2))
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pull, daemon=True,
                                        name="touchstream-subscription")
        self._thread.start()

    def _pull(self) -> None:
        try:
            with self._subscription:  # its exit stops it and joins its own threads
                for notification in self._subscription:
                    while not self._closing.is_set():
                        try:
                            self._queue.put(notification, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if self._closing.is_set():
                        return
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer by ``take``
            self._error = exc

    def take(self, limit: int, timeout: float) -> list[Any]:
        """Up to ``limit`` notifications: waits at most ``timeout`` for the first, then
        takes what is already there. ``SubscriptionEndedError`` once the subscription
        stopped on its own and everything it delivered was taken."""
        try:
            out = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            if not self._thread.is_alive() and self._queue.empty():
                raise SubscriptionEndedError(
                    f"the subscription ended: {self._error!r}") from self._error
            return []
        while len(out) < limit:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        """Stop the subscription and wait for its thread (between batches)."""
        self._closing.set()
        self._subscription.stop()
        self._thread.join(STOP_WAIT_S)
