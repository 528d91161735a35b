"""``touchstream bench projections``: rebuild rate against the raw log read, live lag, RSS.

Measured in one run, on one fresh store:

(a) the ceiling: reading and decoding every event of the log in batches of
    1,000 (the library's notification log and mapper, nothing written); beside it,
    ``rebuild_read_*``: the fill's own read and decode of the same log with no rows
    built (``read_log`` and the classes the read models consume), the floor of each
    fill process;
(b) the rebuild path: new generations of all read models (the core ones —
    timeline, directory, summary — and the business ones of issues 13, 14 and 20)
    built from position 0 in batches of 1,000 events per transaction, filled
    by ``--workers`` processes (``replays.fill``: each reads and decodes the
    log once for its group of read models; one process under 50,000 events),
    then their deferred indexes (what ``projections rebuild`` does before
    comparing); and the same for the core read models
    only (``rebuild_core_*``), so the business read models' cost shows. The
    history mixes touchpoints with business events (``--business-share`` of
    each customer's events: consent, opportunities, orders, cases, contracts,
    made by the areas' own rules) so those read models have work to do;
(b') the rows floor (``rebuild_rows_floor_*``), after (b): the rows the new generations of
    (b) hold at the end (every table a read model's ``ddl`` makes, full-text tables
    included; each transaction's share read just before it by a second connection, not
    timed, so memory holds one share) are inserted again into new, empty generations of the same read models (same tables and indexes, made by
    ``create_generation``: the deferred indexes not yet there), in as many write
    transactions as the fill had batches (1,000 events each; each transaction takes the
    next equal share of every table's rows, in rowid order on SQLite, stored order on
    PostgreSQL), by one process with no Python per row: SQLite ``executemany`` of
    ready tuples, PostgreSQL ``COPY`` (the fill's own ``insert_rows``); then the
    deferred indexes and tables (``finish_generation``: the full-text indexes built from
    the rows). Timed: the write transactions, commits included, and the deferred DDL. It
    leaves out everything else the fill does: reading and decoding the log, building
    the rows, the reads, updates and upserts a read model makes per batch (only the
    final rows are inserted, once each), the tracking rows, and on SQLite the helper
    processes' scratch files and copy-back. So it is the store's share of a rebuild
    alone: ``rebuild_rows_floor_vs_raw_read`` (events / that time / the raw read rate)
    is what a fill could reach at best if building the rows cost nothing (one
    writer: the fill's helper processes write other files, or PostgreSQL, at once);
    near or below 0.5 it bounds the target by itself, above it the rest is the fill's
    Python;
(c) ``touchstream projections rebuild`` (every read model) as a real
    process: wall time including the row-by-row verification and the swap,
    and its peak RSS (flat in N: batches and comparison cursors stream);
(d) live lag: a ``projections run`` worker process follows the log while
    touchpoints are appended one command at a time; lag is from the
    command's return to the timeline's position reaching it;
(e) the cost of decryption: the same history (same seed) is written on a
    second fresh store through a hub with the library's plain mapper
    (``build_hub(..., encrypt=False)``, benchmarks only), and (a) and (b) run
    on it too, in the order plain, production, production, plain;
    ``decryption_cost_*`` is how much slower per event the production
    (decrypting) side is, as a fraction (0.12 = 12%).

Every figure without the ``plain_`` prefix is the production store's.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from functools import partial
from typing import Any

from commands import messages as m
from commands.hub import Hub
from domain.customer import Customer
from projections import registry
from projections.engine import (
    EventSource,
    Names,
    Projection,
    consumed_by,
    create_generation,
    drop_generation,
    ensure_live,
    finish_generation,
)
from projections.store import Db
from projections.timeline.view import TimelineView
from replays.fill import PARALLEL_MIN_EVENTS, default_workers, fill
from replays.progress import ProgressBar
from touchstream.bench.history import add_business, add_touchpoints, new_customer
from touchstream.bench.stores import fresh_settings
from touchstream.bootstrap import Dependencies, OwningEventSource, event_source_of
from touchstream.settings import Settings
from touchstream.wiring import build_hub

NAME = "projections"
TARGETS = {"rebuild_vs_raw_read": (">=", 0.5), "decryption_cost_rebuild": ("<=", 0.15)}
#: The read models every hub had before the business areas (issues 13, 14, 20).
CORE = ("timeline", "directory", "summary")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200_000,
                        help="events in the log (default 200000; try 1000000)")
    parser.add_argument("--customers", type=int, default=1_000,
                        help="customers the events are spread over (default 1000)")
    parser.add_argument("--business-share", type=float, default=0.2,
                        help="share of each customer's events that are business events "
                             "(default 0.2)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes the rebuilds fill in (as 'projections rebuild "
                             "--workers'; default one per core, at most 4)")
    parser.add_argument("--lag-samples", type=int, default=300,
                        help="touchpoints appended one by one for the lag figures (default 300)")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "TOUCHSTREAM_DATA": str(settings.data_dir),
            "TOUCHSTREAM_EVENT_STORE": settings.event_store,
            "TOUCHSTREAM_READ_STORE": settings.read_store,
            "TOUCHSTREAM_DEFAULT_REGION": settings.default_region or ""}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with fresh_settings(args.store) as settings, fresh_settings(args.store) as plain_settings:
        return _measure(settings, plain_settings, args)


def _seed(hub: Hub, args: argparse.Namespace, bar: ProgressBar, done: int) -> list[Customer]:
    """The benchmark's history: the same for every hub (one seed)."""
    rnd = random.Random(42)
    per = max(1, args.events // args.customers - 2)
    business = round(per * args.business_share)
    customers = []
    for k in range(args.customers):
        c = new_customer(hub, f"Customer {k}", rnd)
        add_touchpoints(hub, c, per - business, rnd)
        if business:
            add_business(hub, c, business, rnd)
        customers.append(c)
        bar(done + (k + 1) * per, 2 * args.customers * per)
    return customers


def _business_events(source: EventSource) -> int:
    """How many events of the log are business events (not timed)."""
    pos, found = 0, 0
    while notes := source.read(pos, 1_000):
        found += len(source.decode(notes, (Customer.BusinessEvent,)))
        pos = int(notes[-1].id)
    return found


def _raw_read(source: EventSource) -> tuple[int, float]:
    """(a): events read and decoded, and seconds."""
    started = time.perf_counter()
    pos, decoded = 0, 0
    while True:
        notes = source.read(pos, 1_000)
        if not notes:
            break
        decoded += len(source.decode(notes))
        pos = int(notes[-1].id)
    return decoded, time.perf_counter() - started


def _engine_read(source: EventSource) -> tuple[int, float]:
    """A stage of (b), timed alone: the rebuild's own read and decode of the log (as one
    fill process reads it: ``read_log``, the classes every read model consumes), nothing
    written. The floor of a fill process: no read model's rows can make it cheaper."""
    consumes = consumed_by(list(registry.select(None)))
    started = time.perf_counter()
    pos, decoded = 0, 0
    while notes := source.read_log(pos, 1_000):
        decoded += len(source.decode(notes, consumes))
        pos = int(notes[-1].id)
    return decoded, time.perf_counter() - started


def _plain_source(settings: Settings) -> EventSource:
    """A reader of the plain (unencrypted) benchmark store, for the fill's helper processes."""
    hub = build_hub(settings, encrypt=False)
    return OwningEventSource(hub, hub.close)


def _rebuild(deps: Dependencies, source: EventSource, names: tuple[str, ...] | None = None,
             *, workers: int = 1, encrypt: bool = True
             ) -> tuple[list[tuple[Projection, int]], float]:
    """(b): the generations rebuilt (of all read models, or ``names``), and seconds."""
    db = deps.read_store.connect()
    chosen = registry.select(names)
    for p in chosen:
        ensure_live(db, p)
    started = time.perf_counter()
    fresh = [(p, create_generation(db, p)) for p in chosen]
    factory = partial(event_source_of if encrypt else _plain_source, deps.settings)
    fill(deps.read_store, source, fresh, source.head(), batch=1_000, workers=workers,
         source_factory=factory)
    for p, generation in fresh:
        finish_generation(db, p, generation)
    build_s = time.perf_counter() - started
    db.close()
    return fresh, build_s


def _floor_tables(db: Db, p: Projection, source: Names, target: Names) -> list[str]:
    """The logical tables of ``p`` that both generations have (a deferred one, made by
    ``finish_generation``, exists only in the filled one and is left to it)."""
    if db.dialect == "sqlite":
        found = {r[0] for r in db.all("SELECT name FROM sqlite_master WHERE type='table'")}
    else:
        found = {r[0] for r in db.all("SELECT tablename FROM pg_tables "
                                      "WHERE schemaname = current_schema()")}
    return [t.name for t in p.tables if source[t.name] in found and target[t.name] in found]


def _columns(db: Db, table: str) -> list[str]:
    """The columns an insert gives (PostgreSQL's generated ones are left to the server)."""
    if db.dialect == "sqlite":
        return [r[1] for r in db.all(f"PRAGMA table_info({table})")]
    return [r[0] for r in db.all(
        "SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", (table,))]


def _rows_floor(store: Any, filled: list[tuple[Projection, int]], events: int,
                batch: int = 1_000) -> float:
    """(b'): seconds to insert the rows ``filled`` holds into empty generations of the
    same read models, in the fill's number of transactions, then the deferred DDL."""
    db, reader = store.connect(), store.connect()
    try:
        copies, floor_s = copy_rows(db, reader, filled, events, batch)
        for p, copy in copies:
            drop_generation(db, p, copy)
        return floor_s
    finally:
        reader.close()
        db.close()


def copy_rows(db: Db, reader: Db, filled: list[tuple[Projection, int]], events: int,
              batch: int = 1_000) -> tuple[list[tuple[Projection, int]], float]:
    """The timed part of (b'): new generations holding copies of ``filled``'s rows
    (finished: deferred DDL made), and the seconds spent in the write transactions and
    the deferred DDL. Each transaction's share of the rows is read beforehand, untimed,
    by ``reader`` (another connection, one statement or cursor fetch at a time: no read
    transaction held across the writes, which on SQLite would stop the checkpoints),
    so memory holds one share, not the tables."""
    copies = [(p, g, create_generation(db, p)) for p, g in filled]
    transactions = max(1, -(-events // batch))
    shares: list[tuple[str, list[str], Iterator[list[Any]]]] = []
    for p, g, copy in copies:
        src, dst = p.names(g), p.names(copy)
        for name in _floor_tables(db, p, src, dst):
            columns = _columns(db, dst[name])
            shares.append((dst[name], columns,
                           _shares(reader, src[name], columns, transactions)))
    spent = 0.0
    # PostgreSQL: the reader's cursors live in one read transaction (MVCC: the writer's
    # work is not held up by it); SQLite reads each share by a statement of its own.
    with reader.conn.transaction() if reader.dialect == "postgres" else nullcontext():
        for _ in range(transactions):
            rows = [(table, columns, next(chunks)) for table, columns, chunks in shares]
            started = time.perf_counter()
            with db.write():
                for table, columns, share in rows:
                    if share:
                        db.insert_rows(table, columns, share)
            spent += time.perf_counter() - started
        for _, _, chunks in shares:
            chunks.close()  # each cursor closed inside its transaction
    started = time.perf_counter()
    for p, _, copy in copies:
        finish_generation(db, p, copy)
    spent += time.perf_counter() - started
    return [(p, copy) for p, _, copy in copies], spent


def _shares(reader: Db, table: str, columns: list[str], parts: int) -> Iterator[list[Any]]:
    """``table``'s rows in ``parts`` consecutive shares of (nearly) equal size: SQLite in
    rowid order, by rowid ranges found first; PostgreSQL in stored order, from a cursor."""
    listed = ", ".join(columns)
    total = int(reader.scalar(f"SELECT COUNT(*) FROM {table}") or 0)
    sizes = [total * (k + 1) // parts - total * k // parts for k in range(parts)]
    if reader.dialect == "sqlite":
        # The last rowid of each share (row numbers at the share boundaries).
        ends = dict(reader.all(f"SELECT n, rowid FROM (SELECT rowid, row_number() OVER "
                               f"(ORDER BY rowid) AS n FROM {table})"
                               f" WHERE n IN ({','.join('?' * parts)})",
                               [total * (k + 1) // parts for k in range(parts)]))
        low = -(2**63)
        for k, size in enumerate(sizes):
            if not size:
                yield []
                continue
            high = ends[total * (k + 1) // parts]
            yield reader.all(f"SELECT {listed} FROM {table} WHERE rowid > ? AND rowid <= ? "
                             "ORDER BY rowid", (low, high))
            low = high
        return
    with reader.conn.cursor(name=f"floor_{table}") as cur:
        cur.itersize = 2000
        cur.execute(f"SELECT {listed} FROM {table}")
        for size in sizes:
            yield [tuple(r) for r in cur.fetchmany(size)] if size else []


def _measure(settings: Settings, plain_settings: Settings,
             args: argparse.Namespace) -> dict[str, Any]:
    hub = build_hub(settings)
    # Benchmarks only: the same history through the library's mapper, personal data in clear.
    plain_hub = build_hub(plain_settings, encrypt=False)
    # The bench CLI passes a bar that draws only on a terminal; direct callers get none.
    bar = getattr(args, "setup_progress", None) or ProgressBar("set-up", enabled=False)
    customers = _seed(hub, args, bar, 0)
    _seed(plain_hub, args, bar, args.events)
    bar.done()
    deps = Dependencies(settings, hub=hub)
    plain_deps = Dependencies(plain_settings, hub=plain_hub)
    source = deps.event_source()
    plain_source = plain_deps.event_source()
    head = source.head()

    # Plain, production, production, plain: a busy machine weighs on both alike.
    plain_decoded, plain_raw_s = _raw_read(plain_source)
    decoded, raw_s = _raw_read(source)
    engine_decoded, engine_read_s = _engine_read(source)
    filled, build_s = _rebuild(deps, source, workers=args.workers)
    chosen = [p for p, _ in filled]
    floor_s = _rows_floor(deps.read_store, filled, head)
    _, core_build_s = _rebuild(deps, source, CORE, workers=args.workers)
    _, plain_build_s = _rebuild(plain_deps, plain_source, workers=args.workers, encrypt=False)
    business = _business_events(source)
    plain_source.close()
    plain_hub.close()
    store = deps.read_store

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "touchstream.cli", "projections", "rebuild",
                           "--workers", str(args.workers), *[p.name for p in chosen]], env=_env(settings), capture_output=True,
                          text=True, check=False)
    rebuild_cli_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"rebuild failed: {done.stderr[-2000:]}")
    peak_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)

    lags = _lag(settings, hub, customers[0].id, args.lag_samples, store)
    source.close()
    hub.close()
    raw_rate = decoded / raw_s
    rebuild_rate = decoded / build_s
    floor_rate = decoded / floor_s
    core_rate = decoded / core_build_s
    plain_raw_rate = plain_decoded / plain_raw_s
    plain_rebuild_rate = plain_decoded / plain_build_s
    return {
        "scenario": NAME,
        "store": args.store,
        "figures": {
            "events": head,
            "customer_events": decoded,
            "raw_read_events_per_s": round(raw_rate, 1),
            "business_events": business,
            "read_models": len(chosen),
            "rebuild_workers": args.workers if head >= PARALLEL_MIN_EVENTS else 1,
            "rebuild_events_per_s": round(rebuild_rate, 1),
            "rebuild_core_events_per_s": round(core_rate, 1),
            "rebuild_read_events_per_s": round(engine_decoded / engine_read_s, 1),
            "rebuild_rows_floor_events_per_s": round(floor_rate, 1),
            "rebuild_cli_with_verify_s": round(rebuild_cli_s, 2),
            "lag_p50_ms": round(statistics.median(lags) * 1e3, 2),
            "lag_p99_ms": round(_pct(lags, 0.99) * 1e3, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "plain_customer_events": plain_decoded,
            "plain_raw_read_events_per_s": round(plain_raw_rate, 1),
            "plain_rebuild_events_per_s": round(plain_rebuild_rate, 1),
        },
        "ratios": {
            "rebuild_vs_raw_read": round(rebuild_rate / raw_rate, 3),
            # The core read models only (no business read models), same history.
            "rebuild_core_vs_raw_read": round(core_rate / raw_rate, 3),
            # The fill's own read and decode alone, no rows: what one fill process can
            # never beat (each process of a parallel fill pays it in full).
            "rebuild_read_vs_raw_read": round(engine_decoded / engine_read_s / raw_rate, 3),
            # The rows of (b) inserted again with no Python per row, then the deferred
            # DDL: the store's share of a rebuild alone (see (b') above).
            "rebuild_rows_floor_vs_raw_read": round(floor_rate / raw_rate, 3),
            # Fractions: 0.12 = 12% more time per event than on the plain store.
            "decryption_cost_rebuild": round(plain_rebuild_rate / rebuild_rate - 1, 3),
            "decryption_cost_raw_read": round(plain_raw_rate / raw_rate - 1, 3),
        },
    }


def _lag(settings: Settings, hub: Any, customer_id: Any, samples: int, store: Any) -> list[float]:
    worker = subprocess.Popen([sys.executable, "-m", "touchstream.cli", "projections", "run"],
                              env=_env(settings), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    view = TimelineView(store)
    try:
        deadline = time.monotonic() + 600
        while view.position() < int(hub.recorder.max_notification_id() or 0):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker never caught up")
            time.sleep(0.01)
        # The first append waits for the worker process to start: not a lag sample.
        warm = hub.execute(m.LogCall(customer_id=customer_id, call_id="lag-warm-up"))
        while view.position() < (warm.position or 0):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker never started")
            time.sleep(0.001)
        lags = []
        for i in range(samples):
            done = hub.execute(m.LogCall(customer_id=customer_id, call_id=f"lag-{i}",
                                         summary="lag probe"))
            appended = time.perf_counter()
            while view.position() < (done.position or 0):
                time.sleep(0.0005)
            lags.append(time.perf_counter() - appended)
            time.sleep(0.01)
        return lags
    finally:
        worker.terminate()
        worker.wait(30)

