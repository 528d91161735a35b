"""What the staff-facing read commands share: read models brought up to date, tables.

``touchstream timeline`` and ``customer show`` read the projections' views
(the same rows the read API serves), never aggregates. Before reading, the
read models are caught up to the log's head in this process, so a command
sees what was recorded just before it even when no ``serve`` or ``projections
run`` worker is running (the catch-up is safe beside one: each batch is
applied under the projection's row lock, never twice).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

from projections import registry
from projections.customers import Resolved
from projections.engine import Worker
from projections.store import ReadStore
from replays.progress import ProgressBar
from touchstream.bootstrap import opened
from touchstream.cli.errors import CliError, NotFoundError


def customer_id(raw: str) -> str:
    try:
        return str(UUID(raw))
    except ValueError as exc:
        raise CliError(f"not a customer id: {raw!r}") from exc


def existing(resolved: Resolved | None, asked: str) -> Resolved:
    if resolved is None:
        raise NotFoundError(f"no customer {asked}")
    return resolved


@contextmanager
def read_models(*, quiet: bool) -> Iterator[ReadStore]:
    """The read store, its models caught up to the log head (a bar on a terminal)."""
    with opened() as deps:
        store = deps.read_store
        source = deps.event_source()
        db = store.connect()
        try:
            head = source.head()
            worker = Worker(db, source, [(p, None) for p in registry.select(None)])
            bar = ProgressBar.on_terminal("updating read models", quiet=quiet)
            try:
                worker.catch_up(stop=head, progress=lambda pos: bar(pos, head))
            finally:
                bar.done()
        finally:
            db.close()
            source.close()
        try:
            yield store
        finally:
            store.reset_local()


def when(value: datetime | str | None) -> str:
    """A moment as staff read it: UTC, to the minute."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          stretch: int | None = None) -> list[str]:
    """Left-aligned columns; column ``stretch`` is cut to fit the terminal's width."""
    cells = [[("-" if v is None else str(v)).replace("\n", " ") for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if stretch is not None:
        room = shutil.get_terminal_size((120, 24)).columns - sum(
            w + 2 for i, w in enumerate(widths) if i != stretch)
        widths[stretch] = max(len(headers[stretch]), min(widths[stretch], room))
    out = []
    for row in [list(headers), *cells]:
        parts = [_fit(v, widths[i]) for i, v in enumerate(row)]
        out.append("  ".join(parts).rstrip())
    return out


def _fit(value: str, width: int) -> str:
    return value.ljust(width) if len(value) <= width else value[: width - 1] + "…"
