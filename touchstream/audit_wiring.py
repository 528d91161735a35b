"""Composition of the audit: the seal store on the read store, the log, the key, the sealer.

``touchstream serve`` runs ``SealService``: a seal every
``TOUCHSTREAM_AUDIT_SEAL_INTERVAL`` seconds (default 3600) and one at shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from commands.hub import Hub
from projections.store import Db
from replays.audit.keys import SealKey, load_key
from replays.audit.seals import Seal, SealStore, seal_log
from touchstream.read_side import read_store
from touchstream.settings import Settings, positive_int
from touchstream.wiring import build_hub

log = logging.getLogger("touchstream.audit")

DEFAULT_SEAL_INTERVAL_S = 3600


@dataclass
class Audit:
    """What the audit commands work on: seals (read store), the event log (hub), the data folder."""

    settings: Settings
    hub: Hub
    db: Db
    seals: SealStore

    @property
    def log(self) -> Any:
        return self.hub.recorder

    def key(self, *, create: bool = False) -> SealKey:
        return load_key(self.settings.data_dir, create=create)

    def seal(self) -> Seal:
        return seal_log(self.seals, self.log, self.key(create=True))


@contextmanager
def open_audit(settings: Settings, hub: Hub | None = None) -> Iterator[Audit]:
    own_hub = hub is None
    hub = hub or build_hub(settings)
    db = read_store(settings).connect()
    try:
        store = SealStore(db)
        store.ensure_schema()
        yield Audit(settings, hub, db, store)
    finally:
        db.close()
        if own_hub:
            hub.close()


def seal_interval_s(env: Any = None) -> int:
    return positive_int(os.environ if env is None else env, "TOUCHSTREAM_AUDIT_SEAL_INTERVAL",
                        DEFAULT_SEAL_INTERVAL_S)


class SealService:
    """Seals on an interval in a daemon thread, and once more at ``stop`` (server shutdown)."""

    def __init__(self, settings: Settings, interval_s: float | None = None) -> None:
        self.settings = settings
        self.interval_s = seal_interval_s() if interval_s is None else interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seal_now(self) -> Seal:
        with open_audit(self.settings) as audit:
            seal = audit.seal()
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
