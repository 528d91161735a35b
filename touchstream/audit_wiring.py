"""Composition of the audit: the seal store on the read store, the log, the key, the sealer,
and the read audit (access records) with its FastAPI dependency and route.

``touchstream serve`` runs ``SealService``: a seal of the event log and of the access
log every ``TOUCHSTREAM_AUDIT_SEAL_INTERVAL`` seconds (default 3600) and at shutdown.

Recording reads: the read API records through its ``ReadAudit`` port
(``touchstream.read_side.read_audit``: ``await deps.record(request, who, ids)`` in a
route, once the customer is found); other routes call ``arecord_read(recorder,
request, who, customer_id)`` (``async def``) or ``record_read`` (plain ``def``) with
``recorder = access_recorder(settings)``, or take the ``access_recorded(recorder,
principal)`` dependency. All return only once the record is durable (group-committed
with concurrent reads) and answer 503 with Retry-After otherwise, so nothing is shown
unrecorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from commands.hub import Hub
from projections.store import Db, ReadStore
from replays.audit import access as access_log
from replays.audit.keys import SealKey, load_key
from replays.audit.seals import Seal, SealStore, seal_log
from touchstream.settings import Settings
from touchstream.wiring import build_hub

log = logging.getLogger("touchstream.audit")

DEFAULT_SEAL_INTERVAL_S = 3600


@dataclass
class Audit:
    """What the audit commands work on: seals (read store), the log sealed (the event log,
    or with ``access`` the access log), the hub, the data folder."""

    settings: Settings
    hub: Hub
    db: Db
    seals: SealStore
    log: Any

    def key(self, *, create: bool = False) -> SealKey:
        return load_key(self.settings.data_dir, create=create)

    def seal(self) -> Seal:
        return seal_log(self.seals, self.log, self.key(create=True))


@contextmanager
def open_audit(settings: Settings, hub: Hub | None = None, *,
               access: bool = False) -> Iterator[Audit]:
    own_hub = hub is None
    hub = hub or build_hub(settings)
    db = ReadStore(settings.read_store, timeout_s=settings.store_timeout_s).connect()
    try:
        if access:
            access_log.ensure_schema(db)
            store = SealStore(db, prefix=access_log.seal_prefix(db))
            sealed: Any = access_log.AccessLog(db)
        else:
            store = SealStore(db)
            sealed = hub.recorder
        store.ensure_schema()
        yield Audit(settings, hub, db, store, sealed)
    finally:
        db.close()
        if own_hub:
            hub.close()


def seal_interval_s(settings: Settings) -> int:
    return settings.audit_seal_interval_s


class SealService:
    """Seals on an interval in a daemon thread, and once more at ``stop`` (server shutdown)."""

    def __init__(self, settings: Settings, interval_s: float | None = None) -> None:
        self.settings = settings
        self.interval_s = seal_interval_s(settings) if interval_s is None else interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seal_now(self) -> Seal:
        with open_audit(self.settings) as audit:
            seal = audit.seal()
            with open_audit(self.settings, audit.hub, access=True) as reads:
                reads.seal()
        log.info("sealed the log: seal %d over %d events", seal.seal, seal.tree_size)
        return seal

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.seal_now()
            except Exception:  # a failed seal must not stop the next one; it is logged
                log.exception("sealing the log failed; retrying at the next interval")

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        try:
            self.seal_now()
        except Exception:
            log.exception("the shutdown seal failed")


# --- the read audit --------------------------------------------------------------------

_recorders: dict[str, access_log.AccessRecorder] = {}
_recorders_lock = threading.Lock()


def access_recorder(settings: Settings) -> access_log.AccessRecorder:
    """The process's access recorder on this read store (made on first use, then shared,
    so concurrent requests group-commit together)."""
    with _recorders_lock:
        found = _recorders.get(settings.read_store)
        if found is not None:
            return found
        found = _recorders[settings.read_store] = access_log.AccessRecorder(
            ReadStore(settings.read_store, timeout_s=settings.store_timeout_s),
            process=settings.audit_writer == "process")
        others = [r for r in _recorders.values() if r is not found]
    for other in others:  # writers of loops that have gone (apps made one after another)
        other.close_closed_loops()
    return found


def close_access_recorders() -> None:
    """Write what every access recorder of this process has queued, then close them (a
    later ``access_recorder`` makes a new one)."""
    with _recorders_lock:
        recorders = list(_recorders.values())
        _recorders.clear()
    for recorder in recorders:
        recorder.close()


class ReadAuditService:
    """A service of ``touchstream serve``: at shutdown, after the last request, the read
    audit's group commit writes what is queued (``close_access_recorders``)."""

    def start(self) -> None:
        """Nothing to start: recorders are made on first use."""

    def stop(self) -> None:
        close_access_recorders()
