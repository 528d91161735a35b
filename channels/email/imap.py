"""IMAP ingestion with imapclient: one pass, follow (IDLE + polling), backfill, verify.

Order of things per batch: fetch → record every message (events durable) →
commit ledger rows + checkpoint → only then flag or move (if configured). A
crash anywhere re-reads at most one batch, which the write model dedups.
A UIDVALIDITY change voids every cached UID: it is recorded, the checkpoint
restarts at 0 and the rescan dedups by source key (raw-bytes hash).
"""

from __future__ import annotations

import imaplib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from itertools import chain
from typing import Any

from imapclient import IMAPClient
from imapclient.imapclient import DELETED, FLAGGED, SEEN

from channels.email.config import ImapConfig
from channels.email.fetcher import (
    FETCH_BYTES,
    Ahead,
    FetchAhead,
    FetchAheadError,
    connect,
    list_sizes,
)
from channels.email.fetcher import fetch_batch as _fetch_batch
from channels.email.inbound import Fetched, InboundMail, Origin, Outcome, Remembered
from channels.email.state import ERASED, ImapState, LedgerRow
from commands import email_messages as em

log = logging.getLogger("touchstream.email.imap")
__all__ = ["FETCH_BYTES", "ImapIngester", "IngestHooks", "MailServerError", "MailboxGoneError"]


class MailServerError(Exception):
    """Raised when the IMAP server cannot be reached, refuses the login or breaks off."""


class MailboxGoneError(MailServerError):
    """Raised when a listed message could not be fetched although it still exists."""


@dataclass
class IngestHooks:
    """Observation points (tests use them to crash the process at exact moments)."""

    after_record: Callable[[str, int, Outcome], None] | None = None
    after_checkpoint: Callable[[str, int], None] | None = None


@dataclass
class PassReport:
    folder: str
    uidvalidity: int
    seen: int = 0
    recorded: int = 0
    duplicates: int = 0
    quarantined: int = 0  # new quarantines only: one kept aside on an earlier run is a duplicate
    last_uid: int = 0
    renumbered: bool = False
    released: int = 0  # --retry-quarantined: messages recorded now that were quarantined

    def add(self, outcome: Outcome) -> None:
        self.seen += 1
        if outcome.duplicate:
            self.duplicates += 1
        elif outcome.kind == "quarantine":
            self.quarantined += 1
        else:
            self.recorded += 1


@dataclass
class Gap:
    folder: str
    uid: int
    problem: str


@dataclass
class Quarantined:
    folder: str
    uid: int
    source_key: str


@dataclass
class Verification:
    """What ``--verify`` found: messages never recorded, and messages kept in quarantine."""

    gaps: list[Gap] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass
class _Batch:
    uids: list[int]
    items: dict[int, dict[bytes, Any]] = field(default_factory=dict)


class ImapIngester:
    def __init__(
        self, config: ImapConfig, mail: InboundMail, state: ImapState,
        *, hooks: IngestHooks | None = None, fetch_ahead: bool = True,
    ) -> None:
        """``fetch_ahead``: a pass of more than one batch fetches and parses the next batch
        in a worker process (``channels.email.fetcher``) while it records the current one."""
        self.config = config
        self.fetch_ahead = fetch_ahead
        self.mail = mail
        self.state = state
        self.hooks = hooks or IngestHooks()
        self.account = config.account_name

    # ------------------------------------------------------------------ connection
    def connect(self) -> IMAPClient:
        return connect(self.config)

    @contextmanager
    def session(self) -> Iterator[IMAPClient]:
        """A logged-in connection; network and protocol errors become ``MailServerError``."""
        where = f"IMAP {self.config.host}:{self.config.port}"
        try:
            client = self.connect()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailServerError(f"{where}: {type(exc).__name__}: {exc}") from exc
        try:
            yield client
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailServerError(f"{where}: {type(exc).__name__}: {exc}") from exc
        except FetchAheadError as exc:
            if exc.server:
                raise MailServerError(str(exc)) from exc
            raise
        finally:
            _quietly(client.logout)

    # ------------------------------------------------------------------ passes
    def run_once(self, since: date | None = None) -> list[PassReport]:
        """One pass over every folder (or a backfill of messages since a date)."""
        with self.session() as client:
            return [self.ingest_folder(client, f, since) for f in self.config.folders]

    def ingest_folder(self, client: IMAPClient, folder: str, since: date | None = None) -> PassReport:
        info = client.select_folder(folder, readonly=self.config.after == "none")
        uv = int(info[b"UIDVALIDITY"])
        report = PassReport(folder, uv)
        cp = self.state.checkpoint(self.account, folder)
        if cp is None:
            self.state.reset(self.account, folder, uv)
            last = 0
        elif cp.uidvalidity != uv:
            log.warning("%s %s: UIDVALIDITY %s -> %s, rescanning", self.account, folder,
                        cp.uidvalidity, uv)
            self.mail.sink.execute(em.NoteUidValidityChange(
                actor=self.mail.actor, account=self.account, folder=folder,
                old_uidvalidity=cp.uidvalidity, new_uidvalidity=uv,
            ))
            self.state.reset(self.account, folder, uv)
            report.renumbered = True
            last = 0
        else:
            last = cp.last_uid
        if since is not None:
            uids = sorted(client.search(["SINCE", since]))
            advance = False
        else:
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
            advance = True
        self._ingest(client, folder, uv, uids, advance, report)
        return report

    def retry_quarantined(self) -> list[PassReport]:
        """Read every message quarantined in the current UIDVALIDITY again and record it if
        its cause has gone away (a parser fix, a raised limit, a repaired customer, a sent
        mail now known); those still refused stay quarantined (nothing is recorded twice)."""
        reports = []
        with self.session() as client:
            for folder in self.config.folders:
                info = client.select_folder(folder, readonly=self.config.after == "none")
                uv = int(info[b"UIDVALIDITY"])
                report = PassReport(folder, uv)
                uids = [r.uid for r in self.state.quarantined(self.account, folder, uv)]
                if uids:
                    self._ingest(client, folder, uv, uids, False, report, retry=True)
                reports.append(report)
        return reports

    def _ingest(
        self, client: IMAPClient, folder: str, uv: int, uids: Sequence[int], advance: bool,
        report: PassReport, *, retry: bool = False,
    ) -> None:
        with closing(self._fetched_batches(client, folder, uv, uids)) as batches:
            for batch, sizes, items in batches:
                self._record(client, folder, uv, batch, sizes, items, advance, report, retry)

    def _record(
        self, client: IMAPClient, folder: str, uv: int, batch: list[int], sizes: dict[int, int],
        items: dict[int, Fetched], advance: bool, report: PassReport, retry: bool,
    ) -> None:
        present = []
        for uid in batch:
            if uid in items:
                present.append(uid)
            elif client.search(["UID", str(uid)]) == [uid]:
                raise MailboxGoneError(f"{folder} uid {uid} listed but not fetched")
            # else: expunged meanwhile, nothing to lose
        # What the index remembers of the batch goes with its ledger rows and checkpoint,
        # in one transaction after the events (one durable commit per batch, not two)
        # when the index is this state; a crash before it re-reads the batch.
        remembered: list[Remembered] | None = [] if self.mail.index is self.state else None
        outcomes = self.mail.record_batch([items[u] for u in present], deferred=remembered)
        rows: list[LedgerRow] = []
        for uid, outcome in zip(present, outcomes, strict=True):
            if retry and outcome.kind != "quarantine":
                report.released += 1
            report.add(outcome)
            rows.append(LedgerRow(uid, outcome.source_keys[0], outcome.kind))
            if self.hooks.after_record:
                self.hooks.after_record(folder, uid, outcome)
        self.state.commit(self.account, folder, uv, rows, max(batch) if advance else None,
                          remembered or ())
        report.last_uid = max(report.last_uid, max(batch))
        if self.hooks.after_checkpoint:
            self.hooks.after_checkpoint(folder, max(batch))
        self._after(client, [r.uid for r in rows])

    def _fetched_batches(
        self, client: IMAPClient, folder: str, uv: int, uids: Sequence[int]
    ) -> Iterator[tuple[list[int], dict[int, int], dict[int, Fetched]]]:
        """Each batch with its messages, in order. The first is fetched and parsed here;
        when there are more, a worker process (started meanwhile) fetches and parses each
        next one while the caller records the one before. The worker only reads: nothing
        about recording, checkpointing or the after-action changes."""
        with ExitStack() as stack:
            ahead: FetchAhead | None = None
            if self.fetch_ahead and len(uids) > self.config.batch:
                # two batches at least: the worker starts up (an interpreter, a login)
                # while the sizes are listed here
                ahead = stack.enter_context(self._worker(folder, uv))
            batches = self._batches(client, uids)
            first = next(batches, None)
            if first is None:
                return
            second = next(batches, None) if self.fetch_ahead else None
            if second is None:
                for batch, sizes in chain([first], batches):  # all of them, or just the one
                    yield batch, sizes, self._fetch_here(client, folder, uv, batch, sizes)
                return
            if ahead is None:
                ahead = stack.enter_context(self._worker(folder, uv))
            ahead.ask(*second)
            yield first[0], first[1], self._fetch_here(client, folder, uv, *first)
            asked = deque([second])
            for spec in batches:
                ahead.ask(*spec)  # the worker starts on it as soon as it has sent the one before
                asked.append(spec)
                yield self._taken(folder, uv, asked.popleft(), ahead.take())
            while asked:
                yield self._taken(folder, uv, asked.popleft(), ahead.take())

    def _worker(self, folder: str, uv: int) -> FetchAhead:
        rules = self.mail.rules
        return FetchAhead(self.config, folder, uv, rules.max_bytes, rules.max_depth)

    def _fetch_here(self, client: IMAPClient, folder: str, uv: int, batch: list[int],
                    sizes: dict[int, int]) -> dict[int, Fetched]:
        items = self._fetch(client, batch, sizes)
        return {u: self._fetched(folder, uv, u, item, sizes.get(u, 0)) for u, item in items.items()}

    def _taken(self, folder: str, uv: int, spec: tuple[list[int], dict[int, int]],
               ahead: dict[int, Ahead]) -> tuple[list[int], dict[int, int], dict[int, Fetched]]:
        batch, sizes = spec
        return batch, sizes, {
            u: replace(self._fetched(folder, uv, u, a.item, sizes.get(u, 0)), parsed=a.parsed)
            for u, a in ahead.items()}

    def _batches(
        self, client: IMAPClient, uids: Sequence[int]
    ) -> Iterator[tuple[list[int], dict[int, int]]]:
        """Batches of at most ``batch`` messages and about FETCH_BYTES of message data."""
        limit = self.mail.rules.max_bytes
        for start in range(0, len(uids), 1000):
            part = list(uids[start:start + 1000])
            sizes = list_sizes(client, part)
            batch: list[int] = []
            held = 0
            for uid in part:
                size = sizes.get(uid, 0)
                cost = size if size <= limit else 0  # oversized: only the header is fetched
                if batch and (len(batch) >= self.config.batch or held + cost > FETCH_BYTES):
                    yield batch, sizes
                    batch, held = [], 0
                batch.append(uid)
                held += cost
            if batch:
                yield batch, sizes

    def _fetch(
        self, client: IMAPClient, batch: list[int], sizes: dict[int, int]
    ) -> dict[int, dict[bytes, Any]]:
        return _fetch_batch(client, batch, sizes, self.mail.rules.max_bytes)

    def _fetched(
        self, folder: str, uv: int, uid: int, item: dict[bytes, Any], size: int
    ) -> Fetched:
        received = item.get(b"INTERNALDATE")
        origin = Origin(self.account, folder, uv, uid,
                        received if isinstance(received, datetime) and received.tzinfo else None)
        if b"BODY[]" in item:
            raw = bytes(item[b"BODY[]"] or b"")
            return Fetched(raw, len(raw), origin)
        return Fetched(bytes(item.get(b"BODY[HEADER]") or b""), size, origin, complete=False)

    def _after(self, client: IMAPClient, uids: list[int]) -> None:
        action = self.config.after
        if action == "none" or not uids:
            return
        if action == "seen":
            client.add_flags(uids, [SEEN])
        elif action == "flag":
            client.add_flags(uids, [FLAGGED])
        elif action.startswith("move:"):
            target = action.partition(":")[2]
            if client.has_capability("MOVE"):
                client.move(uids, target)
            else:
                client.copy(uids, target)
                client.add_flags(uids, [DELETED])
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:
                    client.expunge()

    # ------------------------------------------------------------------ follow
    def follow(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: passes, IDLE (or sleep) between them, reconnect on errors."""
        cfg = self.config
        delay = cfg.backoff_initial_s
        while not stop.is_set():
            try:
                with self.session() as client:
                    delay = cfg.backoff_initial_s
                    idle = client.has_capability("IDLE")
                    while not stop.is_set():
                        for folder in cfg.folders:
                            self.ingest_folder(client, folder)
                        self._wait(client, stop, idle)
            except Exception as exc:  # any error: reconnect with backoff, the checkpoint is safe
                log.warning("imap %s: %s: %s; reconnecting in %.1fs", self.account,
                            type(exc).__name__, exc, delay)
                stop.wait(delay * random.uniform(1.0, 1.5))
                delay = min(delay * 2, cfg.backoff_max_s)

    def _wait(self, client: IMAPClient, stop: threading.Event, idle: bool) -> None:
        cfg = self.config
        deadline = time.monotonic() + cfg.poll_s
        if not idle:
            stop.wait(cfg.poll_s)
            client.noop()
            return
        if len(cfg.folders) > 1:
            client.select_folder(cfg.folders[0], readonly=cfg.after == "none")
        client.idle()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=min(1.0, max(0.05, deadline - time.monotonic())))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
        finally:
            client.idle_done()

    # ------------------------------------------------------------------ verify
    def verify(self, is_recorded: Callable[[str], bool], since: date | None = None) -> list[Gap]:
        """Every listed message must have a ledger row whose source key the store knows."""
        return self.verification(is_recorded, since).gaps

    def verification(
        self, is_recorded: Callable[[str], bool], since: date | None = None
    ) -> Verification:
        """Gaps (listed but never recorded or quarantined) and, apart, the messages whose
        ledger row says quarantined: they are kept, not lost, but are not touchpoints."""
        found = Verification()
        with self.session() as client:
            for folder in self.config.folders:
                info = client.select_folder(folder, readonly=True)
                uv = int(info[b"UIDVALIDITY"])
                uids = sorted(client.search(["SINCE", since] if since else ["ALL"]))
                ledger = self.state.ledger(self.account, folder, uv)
                for uid in uids:
                    row = ledger.get(uid)
                    if row is None:
                        found.gaps.append(Gap(folder, uid, "not recorded"))
                    elif row.kind == ERASED:
                        continue  # recorded, then its person was erased: accounted for
                    elif not is_recorded(row.source_key):
                        found.gaps.append(
                            Gap(folder, uid, f"{row.source_key} missing from the event store"))
                    elif row.kind == "quarantine":
                        found.quarantined.append(Quarantined(folder, uid, row.source_key))
        return found


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as exc:  # closing a broken connection: nothing left to save
        log.debug("ignored while closing: %s", exc)
