"""``touchstream export events``: the event log as Parquet, one folder per month.

Layout: ``DIR/month=YYYY-MM/part-<first position>-<last position>.parquet``
(Hive-style, so DuckDB, pandas and Spark read the month as a column), the
month being when the event *occurred*. Columns: position, stream, type,
occurred_at, recorded_at (UTC, microseconds), channel, direction, customer,
payload (every field of the event as canonical JSON; an erased customer's
events without their personal fields, exactly as the read models see them).

Incremental: ``DIR/_touchstream_export.json`` holds the log position the
last finished run reached; the next run exports only what came after it, as
new part files. A run writes its parts under temporary names and renames
them, then the state file, only when it finished, so an interrupted run
leaves the folder as the previous run left it (its stray parts are removed
on the next run).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from domain.customer import Customer
from domain.records import Record
from projections.engine import EventSource
from projections.events import customer_id, payload_json

STATE = "_touchstream_export.json"
FLUSH_ROWS = 50_000
CONSUMES = (Customer.Event, Record.Event)


@dataclass(frozen=True)
class ExportSummary:
    events: int
    files: int
    position_from: int
    position_to: int
    seconds: float

    def line(self) -> str:
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        if not self.events:
            return f"nothing new after log position {self.position_from:,}"
        return (f"exported {self.events:,} events (log positions {self.position_from + 1:,}"
                f"-{self.position_to:,}) into {self.files} part files in {self.seconds:.1f} s "
                f"({rate:,.0f} events/s)")


def export_events(source: EventSource, out: Path, *, batch: int = 5000,
                  progress: Callable[[int, int], None] | None = None) -> ExportSummary:
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE
    after = int(json.loads(state_path.read_text())["position"]) if state_path.exists() else 0
    _remove_unfinished(out, after)
    head = source.head()
    schema = pa.schema([
        ("position", pa.int64()), ("stream", pa.string()), ("type", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")), ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()), ("direction", pa.string()), ("customer", pa.string()),
        ("payload", pa.string()),
    ])
    writers: dict[str, Any] = {}
    buffers: dict[str, list[dict[str, Any]]] = {}
    bounds: dict[str, list[int]] = {}
    buffered = events = 0

    def flush() -> None:
        for month, rows in buffers.items():
            if not rows:
                continue
            if month not in writers:
                folder = out / f"month={month}"
                folder.mkdir(exist_ok=True)
                writers[month] = pq.ParquetWriter(folder / f".partial-{after}", schema)
            writers[month].write_table(pa.Table.from_pylist(rows, schema=schema))
            rows.clear()

    pos = after
    try:
        while pos < head:
            notes = source.read(pos, batch, head)
            if not notes:
                break
            pos = int(notes[-1].id)
            for position, event in source.decode(notes, CONSUMES):
                occurred = getattr(event, "occurred_at", None) or event.timestamp
                month = occurred.astimezone(UTC).strftime("%Y-%m")
                buffers.setdefault(month, []).append({
                    "position": position, "stream": str(event.originator_id),
                    "type": type(event).__qualname__, "occurred_at": occurred,
                    "recorded_at": event.timestamp,
                    "channel": getattr(event, "channel", None),
                    "direction": getattr(event, "direction", None),
                    "customer": customer_id(event) if isinstance(event, Customer.Event) else None,
                    "payload": payload_json(event),
                })
                span = bounds.setdefault(month, [position, position])
                span[1] = position
                buffered += 1
                events += 1
            if buffered >= FLUSH_ROWS:
                flush()
                buffered = 0
            if progress:
                progress(pos, head)
        flush()
    finally:
        for writer in writers.values():
            writer.close()
    for month, (first, last) in bounds.items():
        folder = out / f"month={month}"
        os.replace(folder / f".partial-{after}", folder / f"part-{first:012d}-{last:012d}.parquet")
    tmp = out / f".{STATE}.partial"
    tmp.write_text(json.dumps({"position": pos}))
    os.replace(tmp, state_path)
    return ExportSummary(events, len(bounds), after, pos, time.perf_counter() - started)


def _remove_unfinished(out: Path, after: int) -> None:
    """Parts and temporary files a run that never finished left behind."""
    for path in out.glob("month=*/*"):
        if path.name.startswith(".partial-"):
            path.unlink()
        elif path.name.startswith("part-"):
            first = int(path.name.split("-")[1])
            if first > after:
                path.unlink()
