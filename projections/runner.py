"""Running projections: one daemon thread following the log for a set of read models.

Errors never kill the thread silently: each is logged, kept as ``last_error``
and retried with a growing pause (a read store that is briefly unreachable,
SQLite busy beyond its timeout…). ``stop()`` ends the loop between batches.

An event a read model cannot decode or apply is not retried: that read model
stops at it (``projections.faults``) and the others go on; when every one has
stopped the loop ends and ``all_stopped`` is True.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress

from projections.engine import DEFAULT_BATCH, EventSource, Projection, Worker
from projections.store import ReadStore

log = logging.getLogger("touchstream.projections")


class ProjectionRunner:
    """Keeps ``projections`` up to date from ``source_factory()`` in a background thread."""

    def __init__(self, store: ReadStore, source_factory: Callable[[], EventSource],
                 projections: Sequence[Projection], batch: int = DEFAULT_BATCH) -> None:
        self.store = store
        self.source_factory = source_factory
        self.projections = list(projections)
        self.batch = batch
        self.last_error: BaseException | None = None
        self.all_stopped = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="touchstream-projections",
                                        daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after the current batch (safe from a signal handler)."""
        self._stopping.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_forever(self) -> None:
        """Run in the calling thread until ``stop()`` (the ``projections run`` worker)."""
        self._run()

    def _run(self) -> None:
        pause = 0.2
        while not self._stopping.is_set():
            db = None
            source = None
            try:
                db = self.store.connect()
                source = self.source_factory()
                worker = Worker(db, source, [(p, None) for p in self.projections], self.batch,
                                isolate_faults=True)
                worker.follow(self._stopping)
                if worker.all_stopped:
                    self.all_stopped = True
                    log.error("every read model stopped at an event it cannot use; "
                              "see 'touchstream projections status'")
                    return
            except Exception as exc:
                self.last_error = exc
                log.exception("projection runner failed; retrying in %.1f s", pause)
                self._stopping.wait(pause)
                pause = min(pause * 2, 5.0)
            else:
                pause = 0.2
            finally:
                if source is not None:
                    source.close()
                if db is not None:
                    with suppress(Exception):  # already broken: nothing to close cleanly
                        db.close()
