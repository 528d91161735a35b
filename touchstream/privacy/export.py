"""Subject export: everything the hub holds about one person, as one zip.

Parts: ``events.jsonl`` (every event of every record in the person's merge
group, decrypted, oldest first per stream), ``summary.json`` and
``timeline.jsonl`` (the read models' rows as staff see them), ``blobs/<ref>``
(raw mail, attachments, documents the events name) and ``manifest.json`` with
the SHA-256 and size of each part. Written part by part into the zip (events
and timeline pages are streamed, never held whole), so memory stays flat
however long the history.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

import orjson

from channels.blobs import BlobNotFoundError, BlobStore, BlobUnreadableError
from commands.hub import Hub
from commands.privacy import merge_group, refs_of
from projections.summary.view import SummaryView
from projections.timeline.view import Cursor, TimelineView
from projections.views import ProjectionNotReadyError

_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
PAGE = 500


@dataclass(frozen=True)
class ExportManifest:
    customer_id: str
    customers: list[str]
    parts: dict[str, dict[str, Any]]


class _HashingWriter:
    """Writes to a zip member while counting and hashing what passes."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.sink.write(data)


def _event_json(event: Any) -> bytes:
    fields = {k: v for k, v in event.__dict__.items()}
    fields["type"] = type(event).__qualname__
    return orjson.dumps(fields, option=_JSON, default=_fallback) + b"\n"


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def export_subject(hub: Hub, summary: SummaryView | None, timeline: TimelineView | None,
                   blobs: BlobStore, customer_id: UUID, out: IO[bytes]) -> ExportManifest:
    """Write the person's export zip to ``out``; returns its manifest."""
    group = merge_group(hub, customer_id)  # CustomerNotFoundError for an unknown id
    parts: dict[str, dict[str, Any]] = {}
    refs: set[str] = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        def part(name: str, chunks: Iterator[bytes]) -> None:
            with zf.open(name, "w", force_zip64=True) as member:
                w = _HashingWriter(member)
                for chunk in chunks:
                    w.write(chunk)
            parts[name] = {"sha256": w.sha.hexdigest(), "bytes": w.size}

        def events() -> Iterator[bytes]:
            for member in group:
                batch: list[Any] = []
                for event in hub.stream(member):
                    batch.append(event)
                    yield _event_json(event)
                    if len(batch) >= PAGE:
                        refs.update(refs_of(batch))
                        batch = []
                refs.update(refs_of(batch))

        part("events.jsonl", events())
        missing: list[str] = []
        try:
            if summary is not None:
                found = summary.summary(str(customer_id))
                part("summary.json", iter([orjson.dumps(found, option=_JSON, default=_fallback)]))
            if timeline is not None:
                part("timeline.jsonl", _timeline_rows(timeline, str(customer_id)))
        except ProjectionNotReadyError as exc:
            missing.append(str(exc))  # the events hold everything; said in the manifest
        unreadable: list[str] = []
        for ref in sorted(refs):
            try:
                data = blobs.get(ref)
            except (BlobNotFoundError, ValueError):
                continue  # not a blob (a provider's recording id), or never stored here
            except BlobUnreadableError as exc:
                unreadable.append(str(exc))  # changed on disk: said, not exported
                continue
            part(f"blobs/{ref}", iter([data]))
        manifest = {
            "customer_id": str(customer_id),
            "customers": [str(m) for m in group],
            "exported_at": datetime.now(UTC).isoformat(),
            "parts": parts,
            "read_models_missing": missing,
            "blobs_unreadable": unreadable,
        }
        zf.writestr("manifest.json", orjson.dumps(manifest, option=_JSON | orjson.OPT_INDENT_2))
    return ExportManifest(str(customer_id), [str(m) for m in group], parts)


def _timeline_rows(view: TimelineView, customer_id: str) -> Iterator[bytes]:
    cursor: Cursor | None = None
    while True:
        page = view.page(customer_id, limit=PAGE, cursor=cursor)
        for item in page.items:
            yield orjson.dumps(item, option=_JSON, default=_fallback) + b"\n"
        if page.next_cursor is None:
            return
        cursor = Cursor.decode(page.next_cursor)
