"""Tail ``Master.csv`` into the hub with a durable (inode, offset) checkpoint.

* The checkpoint advances only after the rows before it were recorded (or
  quarantined), so a crash replays at most a few rows — which the source keys
  absorb — and never skips one.
* A last line without its newline is still being written: it is deferred.
* Rotation (a new inode at the path) is detected; the rest of the old file is
  read first when it can still be found next to the new one (``Master.csv.1``).
  A file shorter than the checkpoint was truncated and is read from the start.
* A row that cannot be read or recorded is quarantined with its raw bytes and
  reported — never dropped silently.
* Rows are recorded in batches through the write model's bulk path (one
  transaction for many rows, same source-key dedup).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from channels.phone.cdr import CdrOptions, MalformedCdrError, parse_line, to_command
from commands import messages as m
from commands.bulk import ImportResult

HEAD_BYTES = 256
BATCH = 200


@dataclass(frozen=True)
class Checkpoint:
    inode: int
    offset: int
    head: str  # sha256 of the file's first bytes: tells a reused inode from the same file


class CheckpointFile:
    """A checkpoint kept as a small JSON file, replaced atomically and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Checkpoint | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        return Checkpoint(int(data["inode"]), int(data["offset"]), str(data["head"]))

    def save(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(checkpoint), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class Quarantine:
    """Rows that could not be recorded, with their raw bytes, one JSON line each.

    Writers and a retry take an exclusive lock (a ``.lock`` file beside it), so a
    retry that rewrites the file never loses a row another import adds meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def put(self, source: str, offset: int, raw: bytes, reason: str) -> None:
        entry = {"source": source, "offset": offset, "reason": reason,
                 "raw_base64": base64.b64encode(raw).decode(), "at": time.time()}
        with self.locked(), open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self) -> list[dict[str, Any]]:
        """Every row waiting, oldest first (call under ``locked`` to rewrite them)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def waiting(self) -> int:
        """How many rows wait in quarantine."""
        return len(self.entries())

    def replace(self, entries: list[dict[str, Any]]) -> None:
        """Keep only ``entries`` (atomically: a kill leaves the old file or the new one)."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".quarantine-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(entry) + "\n" for entry in entries)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def purge(self, matches: Callable[[dict[str, Any]], bool]) -> int:
        """Remove every row ``matches`` selects (erasure of the person it names); how many.

        The file is replaced atomically, then the old file's bytes are overwritten
        with zeros through a handle kept open across the replace, so the removed
        rows are left in no file."""
        with self.locked():
            entries = self.entries()
            kept = [entry for entry in entries if not matches(entry)]
            if len(kept) == len(entries):
                return 0
            with open(self.path, "r+b") as old:
                self.replace(kept)
                size = os.fstat(old.fileno()).st_size
                old.write(b"\0" * size)
                old.flush()
                os.fsync(old.fileno())
        return len(entries) - len(kept)


@dataclass
class RetryStats:
    """What a retry of the quarantine did."""

    retried: int = 0
    recorded: int = 0
    duplicates: int = 0
    held_for_triage: int = 0
    waiting: int = 0  # still in quarantine afterwards


@dataclass
class ImportStats:
    rows: int = 0
    recorded: int = 0
    duplicates: int = 0
    malformed: int = 0
    rejected: int = 0
    held_for_triage: int = 0
    rotations: int = 0
    deferred_bytes: int = 0
    problems: list[str] = field(default_factory=list)


RecordBatch = Callable[[list[m.LogCall]], list[ImportResult]]


@dataclass(frozen=True)
class _Row:
    offset: int
    raw: bytes
    cmd: m.LogCall
Report = Callable[[str], None]


def _head(fh: BinaryIO, offset: int) -> str:
    """Hash of the file's first bytes (up to ``offset``): tells the same file from a new one."""
    fh.seek(0)
    return hashlib.sha256(fh.read(min(HEAD_BYTES, offset))).hexdigest()


class CdrTailer:
    def __init__(self, path: Path, record: RecordBatch, checkpoints: CheckpointFile,
                 quarantine: Quarantine, options: CdrOptions, report: Report,
                 batch: int = BATCH) -> None:
        self.path = path
        self.record = record
        self.checkpoints = checkpoints
        self.quarantine = quarantine
        self.options = options
        self.report = report
        self.batch = batch
        self.stats = ImportStats()

    # -- one pass ---------------------------------------------------------
    def run_once(self) -> ImportStats:
        """Record every complete row not yet recorded; return the running totals."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            self.report(f"{self.path}: not there (yet)")
            return self.stats
        with fh:
            st = os.fstat(fh.fileno())
            cp = self.checkpoints.load()
            start = 0
            if cp is not None and cp.inode == st.st_ino:
                if cp.offset <= st.st_size and _head(fh, cp.offset) == cp.head:
                    start = cp.offset
                else:
                    self.report(f"{self.path}: truncated or replaced in place; "
                                "reading it again from the start (duplicates are skipped)")
            elif cp is not None:
                self._finish_rotated(cp)
            self._drain(fh, st.st_ino, start, final=False)
        return self.stats

    def follow(self, stop: Callable[[], bool], poll_s: float = 0.5) -> ImportStats:
        """Keep reading as the PBX appends, until ``stop()`` is true."""
        while True:
            self.run_once()
            if stop():
                return self.stats
            time.sleep(poll_s)

    # -- internals --------------------------------------------------------
    def _finish_rotated(self, cp: Checkpoint) -> None:
        self.stats.rotations += 1
        old = self._find_inode(cp.inode)
        if old is None:
            self.report(f"{self.path}: rotated; the previous file is gone, "
                        f"rows after byte {cp.offset} of it were not seen here")
            return
        self.report(f"{self.path}: rotated; finishing {old.name} from byte {cp.offset}")
        with open(old, "rb") as fh:
            start = cp.offset if _head(fh, cp.offset) == cp.head else 0
            self._drain(fh, cp.inode, start, final=True, label=str(old))

    def _find_inode(self, inode: int) -> Path | None:
        for sibling in sorted(self.path.parent.glob(self.path.name + "*")):
            try:
                if sibling != self.path and sibling.stat().st_ino == inode:
                    return sibling
            except FileNotFoundError:
                continue
        return None

    def _drain(self, fh: BinaryIO, inode: int, start: int, *, final: bool,
               label: str | None = None) -> None:
        source = label or str(self.path)
        fh.seek(start)
        offset = start
        batch: list[_Row] = []
        for line in iter(fh.readline, b""):
            if not line.endswith(b"\n"):
                if final:  # a rotated file will not grow: its torn last line is quarantined
                    self._quarantine(source, offset, line, "incomplete last line")
                    offset += len(line)
                else:
                    self.stats.deferred_bytes = len(line)
                break
            row = self._parse(source, offset, line[:-1])
            if row is not None:
                batch.append(row)
            offset += len(line)
            if len(batch) >= self.batch:
                self._record(source, batch)
                batch = []
                self._save(fh, inode, offset)  # only after the rows before it are recorded
        else:
            self.stats.deferred_bytes = 0
        self._record(source, batch)
        self._save(fh, inode, offset)

    def _save(self, fh: BinaryIO, inode: int, offset: int) -> None:
        position = fh.tell()
        self.checkpoints.save(Checkpoint(inode, offset, _head(fh, offset)))
        fh.seek(position)

    def _parse(self, source: str, offset: int, raw: bytes) -> _Row | None:
        if not raw.strip():
            return None
        self.stats.rows += 1
        try:
            cmd = to_command(parse_line(raw, self.options.timezone), self.options)
        except MalformedCdrError as exc:
            self.stats.malformed += 1
            self._quarantine(source, offset, raw, f"malformed: {exc}")
            return None
        except ValueError as exc:  # pydantic's ValidationError: a field too long…
            self.stats.rejected += 1
            self._quarantine(source, offset, raw, f"rejected: {exc}")
            return None
        return _Row(offset, raw, cmd)

    def _record(self, source: str, rows: list[_Row]) -> None:
        if not rows:
            return
        outcomes = self.record([r.cmd for r in rows])
        for row, outcome in zip(rows, outcomes, strict=True):
            result = outcome.recorded
            if result is None:
                self.stats.rejected += 1
                self._quarantine(source, row.offset, row.raw, f"rejected: {outcome.error}")
            elif result.duplicate:
                self.stats.duplicates += 1
            elif result.held_for_triage:
                self.stats.held_for_triage += 1
            else:
                self.stats.recorded += 1

    def _quarantine(self, source: str, offset: int, raw: bytes, reason: str) -> None:
        self.quarantine.put(source, offset, raw, reason)
        message = f"{source}:{offset}: {reason} (quarantined)"
        self.stats.problems.append(message)
        self.report(message)


def retry_quarantined(
    quarantine: Quarantine, record: RecordBatch, options: CdrOptions, batch: int = BATCH
) -> RetryStats:
    """Record again every row waiting in quarantine (refused for a reason that may have
    gone away: a customer since registered, a fixed setting). Rows recorded meanwhile
    count as duplicates; rows refused again stay, with the new reason."""
    stats = RetryStats()
    with quarantine.locked():
        kept: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], m.LogCall]] = []
        for entry in quarantine.entries():
            stats.retried += 1
            try:
                raw = base64.b64decode(entry["raw_base64"])
                cmd = to_command(parse_line(raw, options.timezone), options)
            except MalformedCdrError as exc:
                kept.append({**entry, "reason": f"malformed: {exc}"})
                continue
            except ValueError as exc:  # a bad field, or a damaged entry
                kept.append({**entry, "reason": f"rejected: {exc}"})
                continue
            pending.append((entry, cmd))
        for start in range(0, len(pending), batch):
            chunk = pending[start:start + batch]
            outcomes = record([cmd for _, cmd in chunk])
            for (entry, _), outcome in zip(chunk, outcomes, strict=True):
                result = outcome.recorded
                if result is None:
                    kept.append({**entry, "reason": f"rejected: {outcome.error}"})
                elif result.duplicate:
                    stats.duplicates += 1
                elif result.held_for_triage:
                    stats.held_for_triage += 1
                else:
                    stats.recorded += 1
        quarantine.replace(kept)
    stats.waiting = len(kept)
    return stats
