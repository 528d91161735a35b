"""``touchstream replay run``: an analyst's file over the whole history, into a file.

The parent reads the log in batches (decrypted through the privacy layer:
erased customers' events arrive without their personal fields), keeps the
events the filters select, and hands them to the sandboxed child
(``replays.analyst.sandbox``); the rows coming back are streamed into the
output, so memory stays flat whatever the history's size. The output is
written beside its final name and renamed into place only when the whole
run succeeded: a failed run leaves no half-written result.

Filters: ``since``/``until`` select by the date an event *occurred*;
``known_at`` keeps only events *recorded* by then (the history as the hub
knew it at that moment); ``customers`` keeps those customers' events (and
drops the other aggregates'). The summary names the log position reached.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from domain.customer import Customer
from domain.records import Record
from projections.engine import EventSource
from projections.events import customer_id
from replays.analyst.outputs import Output, output_for
from replays.analyst.sandbox import child_main

CONSUMES = (Customer.Event, Record.Event)


class ReplayError(Exception):
    """Base of a one-off replay's errors."""


class ReplaySpecError(ReplayError):
    """Raised when the analyst file does not load (its message says why)."""


class ReplayHandlerError(ReplayError):
    """Raised when a handler failed: the run stopped at ``position``, nothing was written."""

    def __init__(self, position: int, event: str, trace: str) -> None:
        super().__init__(f"the handler failed on event {position} ({event}); "
                         f"nothing was written\n{trace.rstrip()}")
        self.position = position
        self.event = event
        self.trace = trace


@dataclass(frozen=True)
class ReplayFilter:
    since: date | None = None
    until: date | None = None
    known_at: datetime | None = None
    customers: frozenset[str] | None = None

    def keeps(self, event: Any) -> bool:
        if self.customers is not None and (
                not isinstance(event, Customer.Event) or customer_id(event) not in self.customers):
            return False
        if self.known_at is not None and event.timestamp > self.known_at:
            return False
        if self.since is not None or self.until is not None:
            day = event.occurred_at.astimezone(UTC).date()
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True


@dataclass(frozen=True)
class ReplaySummary:
    name: str
    events_read: int
    events_given: int
    rows: int
    position: int
    seconds: float
    out: Path

    def line(self) -> str:
        rate = self.events_read / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.name}: {self.events_given:,} of {self.events_read:,} events replayed, "
                f"{self.rows:,} rows -> {self.out} (log position {self.position:,}, "
                f"{self.seconds:.1f} s, {rate:,.0f} events/s)")


def run_replay(source: EventSource, spec_source: str, filename: str, out: Path,
               where: ReplayFilter = ReplayFilter(), *, batch: int = 1000,
               progress: Callable[[int, int], None] | None = None) -> ReplaySummary:
    """Replay the log (up to its head at the start) through the file into ``out``."""
    started = time.perf_counter()
    head = source.head()
    ctx = multiprocessing.get_context("spawn")
    to_child_r, to_child_w = ctx.Pipe(duplex=False)
    from_child_r, from_child_w = ctx.Pipe(duplex=False)
    child = ctx.Process(target=child_main, args=(spec_source, filename, to_child_r, from_child_w),
                        name="touchstream-replay", daemon=True)
    child.start()
    to_child_r.close()
    from_child_w.close()
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    receiver: _Receiver | None = None
    try:
        ready = _receive(from_child_r, child)
        if ready[0] == "spec-error":
            raise ReplaySpecError(f"{filename}: {ready[1]}")
        _, name, columns = ready
        # Rows are read back on a thread while this one feeds the child: neither
        # side can block the other on a full pipe, and both cores work.
        receiver = _Receiver(from_child_r, child, output_for(out, tmp, name, columns))
        receiver.start()
        read = given = pos = 0
        try:
            while pos < head and receiver.failure is None:
                notes = source.read(pos, batch, head)
                if not notes:
                    break
                pos = int(notes[-1].id)
                read += len(notes)
                items = [(p, e) for p, e in source.decode(notes, CONSUMES) if where.keeps(e)]
                given += len(items)
                to_child_w.send(items)
                if progress:
                    progress(pos, head)
            to_child_w.send(None)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child stopped: the receiver holds why
        receiver.join()
        if receiver.failure is not None:
            raise receiver.failure
        receiver.output.close()
        os.replace(tmp, out)
    except BaseException:
        if receiver is not None:
            receiver.output.abort()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        to_child_w.close()
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join()
        from_child_r.close()
    return ReplaySummary(name, read, given, receiver.rows, pos, time.perf_counter() - started,
                         out)


class _Receiver(threading.Thread):
    """Writes the child's rows to the output until it says done, failed, or died."""

    def __init__(self, conn: Any, child: Any, output: Output) -> None:
        super().__init__(name="touchstream-replay-rows", daemon=True)
        self.conn = conn
        self.child = child
        self.output = output
        self.rows = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                message = _receive(self.conn, self.child)
                if message[0] == "done":
                    return
                if message[0] == "error":
                    _, position, event, trace = message
                    raise ReplayHandlerError(position, event, trace)
                rows: list[tuple[Any, ...]] = message[1]
                self.output.write(rows)
                self.rows += len(rows)
        except BaseException as exc:  # noqa: BLE001 -- handed to the feeding thread
            self.failure = exc


def _receive(conn: Any, child: Any) -> tuple[Any, ...]:
    try:
        message: tuple[Any, ...] = conn.recv()
    except EOFError as exc:
        child.join(timeout=5)
        raise ReplayError(f"the replay child died (exit code {child.exitcode})") from exc
    return message
