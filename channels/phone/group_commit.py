"""Group commit for webhooks: concurrent callbacks share one durable transaction.

A provider posts status callbacks for many calls at once; one transaction
(and one fsync) per callback bounds the hub by the disk. Requests hand their
command to one writer thread, which records whatever has queued up in one go
through the write model's batched path (``commands.bulk``: same source-key
dedup, same identity resolution) and then answers every waiting request.
A request is answered only after its event is durable; if the process dies
first, the provider never got its 2xx and retries.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from commands import messages as m
from commands.bulk import BulkImporter, ImportResult
from commands.hub import Hub

_Item = tuple[m.Touchpoint, "Future[ImportResult]"]


class GroupCommit:
    """Records submitted touchpoints in batches of up to ``max_batch`` on one writer thread."""

    def __init__(self, get_hub: Callable[[], Hub], max_batch: int = 200) -> None:
        self._get_hub = get_hub
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, cmd: m.Touchpoint) -> Future[ImportResult]:
        """Queue ``cmd``; the future resolves once it is recorded (or refused)."""
        future: Future[ImportResult] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-group-commit",
                                                daemon=True)
                self._thread.start()
        self._queue.put((cmd, future))
        return future

    def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._record(batch)
            if stop:
                return

    def _record(self, batch: list[_Item]) -> None:
        try:
            results = BulkImporter(self._get_hub()).import_history([c for c, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
