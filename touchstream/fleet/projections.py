"""Projection workers sharing the read models: one owner per read model, by lease.

Every ``touchstream projections run`` worker (and every ``serve`` running
projections) is a member of the pool ``projections``; each takes a fair share
(``ceil(read models / members)``) of the ``projection:<name>`` leases and runs
a ``ProjectionRunner`` over the read models it holds. When a member joins,
leaves or dies the shares change at the next renewal: a worker that holds too
many gives the excess back at a batch boundary, and a dead worker's leases
expire and are taken by the others (within the lease plus one renewal).

The lease only spreads the work. Exactly-once comes from the engine: a batch
is applied under the projection's row lock after checking its position, so a
worker that stalls past its lease and overlaps with its successor still never
applies an event twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from projections.engine import DEFAULT_BATCH, EventSource, Projection
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from touchstream.fleet.leases import LeaseGroup, Leases

log = logging.getLogger("touchstream.projections")

POOL = "projections"


class LeasedProjections:
    """Runs the read models this process holds leases on, until stopped."""

    def __init__(self, store: ReadStore, source_factory: Callable[[], EventSource],
                 projections: Sequence[Projection], leases: Leases, owner: str, ttl_s: float,
                 *, batch: int = DEFAULT_BATCH) -> None:
        self.store = store
        self.source_factory = source_factory
        self.projections = list(projections)
        self.batch = batch
        self.group = LeaseGroup(leases, "projection:", [p.name for p in self.projections],
                                owner, ttl_s, pool=POOL)
        self.all_stopped = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> set[str]:
        """The read models this process runs now."""
        return set(self.group.held)

    def start(self) -> None:
        """Run in a daemon thread (``serve``)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self.run_forever, daemon=True,
                                            name="touchstream-projection-leases")
            self._thread.start()

    def request_stop(self) -> None:
        """End after the current batch and hand the leases over (safe from a signal handler)."""
        self._stopping.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_forever(self) -> None:
        """Run in the calling thread until ``request_stop`` (``projections run``)."""
        self.group.run(self._stopping, self._work)

    def _work(self, owned: frozenset[str], round_over: threading.Event) -> None:
        chosen = [p for p in self.projections if p.name in owned]
        runner = ProjectionRunner(self.store, self.source_factory, chosen, self.batch)
        runner.start()
        try:
            while not round_over.wait(0.5):
                if not runner.running:  # every read model it holds stopped at a fault
                    if runner.all_stopped and len(owned) == len(self.projections):
                        self.all_stopped = True
                        self._stopping.set()
                    round_over.wait()
                    break
        finally:
            runner.stop(timeout=30.0)
