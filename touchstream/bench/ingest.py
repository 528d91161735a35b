"""Recording throughput against the store's own ceiling (``touchstream bench ingest``).

Measured in one run, on one fresh store:

(a) the ceiling: raw durable inserts of a row the size of a stored touchpoint
    event, one row per commit, with plain sqlite3 / psycopg on the same store
    (SQLite: the library's WAL journal and the same ``synchronous`` level;
    PostgreSQL: the server's defaults, fsync on);
(b) touchpoints through the full command path, one per command:
    ``hub.execute(LogCall(...))`` round-robin over ``--customers`` customers;
(c) the bulk import path (``commands.bulk.BulkImporter``) against raw batched
    inserts of the same rows, 1,000 rows per transaction (SQLite
    ``executemany``, PostgreSQL ``COPY``);
(d) per-command cost on a customer with ``--history`` prior events (built
    with the bulk path) against a new customer, commands interleaved: with the
    hub's aggregate cache warm, and through a hub without a cache (snapshots
    only, as after a restart); the ratio is the worse of the two.

(e) the cost of encryption: (b) and (c) run as well on a second fresh store
    through a hub with the library's plain mapper (``build_hub(...,
    encrypt=False)``, benchmarks only), the same commands in the same rounds,
    alternating which hub goes first; ``encryption_cost_*`` is how much
    slower the production (encrypting) hub is, as a fraction (0.12 = 12%).

(a)/(b)/(e) and (c)/(e) alternate in ``--rounds`` so a busy disk or CPU weighs
on both sides of each ratio alike. Figures carry their unit in their name; the
``plain_`` ones are the unencrypted hub's. Every other figure and ratio is the
production hub's.

(f) the floors the rows themselves set (``touchstream.bench.ingest_floors``), after
    everything else (inside the rounds their writes slowed the production hub's bulk
    import by a third): the rows (b) and (c) stored on the production store, read back
    round by round and inserted again into empty copies of the events and source-key
    tables, built beforehand, with the ceilings' own client calls. Each round
    alternates with the same ceiling's procedure run again on a table of its own
    (``raw_*_beside_floors_*``: the ceilings above are not changed), so the two see
    the same machine. ``bulk_rows_floor_vs_raw_batched``: the event rows and
    source-key rows each round's import stored, in as many transactions as its saves
    took (``bulk_save_mean_events``: SQLite ``executemany``, PostgreSQL ``COPY``),
    against (c)'s procedure. ``command_rows_floor_vs_raw``: each command's event row
    and source-key row, one transaction and durable commit each (PostgreSQL: one
    prepared statement, without the save's table lock and NOTIFY), against (a)'s.
    Neither includes snapshots, key lookups or anything else the paths do.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

import psycopg

from commands import messages as m
from commands.bulk import BulkImporter
from commands.hub import Hub
from touchstream import wiring
from touchstream.bench.ingest_floors import Pair, RowFloors
from touchstream.bench.stores import fresh_settings
from touchstream.settings import Settings, sqlite_path

NAME = "ingest"
TARGETS = {
    "command_vs_raw": (">=", 0.5),
    "bulk_vs_raw_batched": (">=", 0.5),
    "heavy_vs_new_cost": ("<=", 1.5),
    "encryption_cost_command": ("<=", 0.15),
    "encryption_cost_bulk": ("<=", 0.15),
}
RAW_BATCH_ROWS = 1_000
RAW_TABLE = "bench_raw_events"
T0 = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commands", type=int, default=1_000,
                        help="touchpoints recorded one per command, and raw single-row commits "
                             "(default 1000)")
    parser.add_argument("--customers", type=int, default=50,
                        help="customers the one-per-command touchpoints are spread over (default 50)")
    parser.add_argument("--bulk-events", type=int, default=20_000,
                        help="events imported by the bulk path, and raw batched rows (default 20000)")
    parser.add_argument("--bulk-customers", type=int, default=100,
                        help="customers the bulk import is spread over (default 100)")
    parser.add_argument("--history", type=int, default=100_000,
                        help="prior events on the heavy customer (default 100000)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="(a)/(b) and (c) alternate in this many rounds (default 10)")
    parser.add_argument("--probe", type=int, default=200,
                        help="commands timed on each of the heavy and the new customer (default 200)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    for name in ("commands", "customers", "bulk_events", "bulk_customers", "probe", "rounds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.history < 0:
        raise ValueError("--history must not be negative")
    with fresh_settings(args.store) as settings, fresh_settings(args.store) as plain_settings:
        hub = wiring.build_hub(settings)
        # Benchmarks only: the same hub with the library's mapper, personal data in clear.
        plain = wiring.build_hub(plain_settings, encrypt=False)
        try:
            figures = _measure(hub, plain, settings, plain_settings, args)
        finally:
            plain.close()
            hub.close()
    ratios = {
        "command_vs_raw": figures["command_touchpoints_per_s"] / figures["raw_single_commit_rows_per_s"],
        "bulk_vs_raw_batched": figures["bulk_events_per_s"] / figures["raw_batched_rows_per_s"],
        # (f): no targets, the bounds of the two above.
        "command_rows_floor_vs_raw": figures["command_rows_floor_per_s"]
        / figures["raw_single_commit_beside_floors_rows_per_s"],
        "bulk_rows_floor_vs_raw_batched": figures["bulk_rows_floor_events_per_s"]
        / figures["raw_batched_beside_floors_rows_per_s"],
        # The worse of the two: with the cache warm, and without it (snapshots only).
        "heavy_vs_new_cost": max(
            figures["heavy_command_mean_ms"] / figures["new_command_mean_ms"],
            figures["heavy_uncached_command_mean_ms"] / figures["new_uncached_command_mean_ms"],
        ),
        # Fractions: 0.12 = the encrypting hub took 12% longer for the same work.
        "encryption_cost_command":
            figures["plain_command_touchpoints_per_s"] / figures["command_touchpoints_per_s"] - 1,
        "encryption_cost_bulk":
            figures["plain_bulk_events_per_s"] / figures["bulk_events_per_s"] - 1,
    }
    return {
        "scenario": NAME,
        "store": args.store,
        "figures": {k: round(v, 3) for k, v in figures.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
    }


def _measure(hub: Hub, plain: Hub, settings: Settings, plain_settings: Settings,
             args: argparse.Namespace) -> dict[str, float]:
    """(a)-(c) and (e), interleaved in ``--rounds`` so that a busy disk or CPU hits both
    sides alike; (d) on the production hub."""
    figures: dict[str, float] = {}
    hubs = {"": hub, "plain_": plain}
    customers = {k: _register(h, args.customers, "cmd") for k, h in hubs.items()}
    bulk_customers = {k: _register(h, args.bulk_customers, "bulk") for k, h in hubs.items()}
    topic, state = _sample_row(hub, customers[""][0])
    figures["stored_event_bytes"] = len(state)
    figures["plain_stored_event_bytes"] = len(_sample_row(plain, customers["plain_"][0])[1])
    raw = _RawStore(settings, hub, topic, state)
    # The raw rows land in the production store's database (its WAL, its checkpoints):
    # the plain store gets the same rows, untimed, so (e) compares like with like.
    plain_raw = _RawStore(plain_settings, plain, topic, state)
    importers = {k: BulkImporter(h) for k, h in hubs.items()}
    raw_s = batched_s = reimport_s = 0.0
    # (f)'s work: the stored keys of the production hub's commands by round, and its
    # saves in each round (keys, not commands: 10,000s of live objects slow every
    # collection of the garbage collector while the rounds run).
    command_rounds: list[list[str]] = []
    bulk_rounds: list[tuple[list[str], int]] = []
    command_s = dict.fromkeys(hubs, 0.0)
    bulk_s = dict.fromkeys(hubs, 0.0)
    latencies: dict[str, list[float]] = {k: [] for k in hubs}
    try:
        for r, (lo, hi) in enumerate(_rounds(args.commands, args.rounds)):
            raw_s += raw.single_commits(hi - lo, args.customers)  # (a)
            plain_raw.single_commits(hi - lo, args.customers)
            for k in _order(hubs, r):  # (b), and (e) on the plain hub
                command_s[k] += _commands(hubs[k], customers[k], lo, hi, latencies[k])
            command_rounds.append(_digests(hub, [
                _call(customers[""][i % len(customers[""])], f"cmd-{i}", i) for i in range(lo, hi)]))
        for r, (lo, hi) in enumerate(_rounds(args.bulk_events, args.rounds)):
            batched_s += raw.batched(hi - lo, args.bulk_customers)  # (c) ceiling
            plain_raw.batched(hi - lo, args.bulk_customers)
            for k in _order(hubs, r):  # (c), and (e) on the plain hub
                commands = [_call(bulk_customers[k][i % args.bulk_customers], f"bulk-{i}", i)
                            for i in range(lo, hi)]
                before = importers[k].saves
                started = time.perf_counter()
                results = importers[k].import_history(commands)
                bulk_s[k] += time.perf_counter() - started
                if k == "":
                    bulk_rounds.append((_digests(hub, commands), importers[k].saves - before))
                _check(results, hi - lo, duplicates=False)
                started = time.perf_counter()
                again = importers[k].import_history(commands)
                if k == "":
                    reimport_s += time.perf_counter() - started
                _check(again, hi - lo, duplicates=True)
    finally:
        raw.close()
        plain_raw.close()
    figures["raw_single_commit_rows_per_s"] = args.commands / raw_s
    for k in hubs:
        figures[f"{k}command_touchpoints_per_s"] = args.commands / command_s[k]
        figures[f"{k}command_latency_p50_ms"] = statistics.median(latencies[k]) * 1000
    figures["command_latency_p99_ms"] = _percentile(latencies[""], 0.99) * 1000
    figures["raw_batched_rows_per_s"] = args.bulk_events / batched_s
    for k in hubs:
        figures[f"{k}bulk_events_per_s"] = args.bulk_events / bulk_s[k]
    figures["bulk_reimport_commands_per_s"] = args.bulk_events / reimport_s
    figures.update(_heavy_vs_new(hub, settings, args))
    figures.update(_floors(hub, settings, (topic, state), command_rounds, bulk_rounds, args))
    return figures


def _floors(hub: Hub, settings: Settings, row: tuple[str, bytes],
            command_rounds: list[list[str]], bulk_rounds: list[tuple[list[str], int]],
            args: argparse.Namespace) -> dict[str, float]:
    """(f): the rows of (b) and (c), round by round, inserted again with no Python, each
    round after the same round of its ceiling's procedure."""
    raw = _RawStore(settings, hub, *row, table=f"{RAW_TABLE}_beside_floors")
    floors = RowFloors(settings, hub)
    raw_s = batched_s = command_s = bulk_s = 0.0
    try:
        for digests in command_rounds:
            raw_s += raw.single_commits(len(digests), args.customers)
            command_s += floors.one_per_commit(_stored(floors, digests))
        for digests, saves in bulk_rounds:
            batched_s += raw.batched(len(digests), args.bulk_customers)
            bulk_s += floors.bulk(_stored(floors, digests), saves)
    finally:
        floors.close()
        raw.close()
    n_commands = sum(map(len, command_rounds))
    n_events = sum(len(digests) for digests, _ in bulk_rounds)
    return {
        "raw_single_commit_beside_floors_rows_per_s": n_commands / raw_s,
        "command_rows_floor_per_s": n_commands / command_s,
        "raw_batched_beside_floors_rows_per_s": n_events / batched_s,
        "bulk_rows_floor_events_per_s": n_events / bulk_s,
        "bulk_save_mean_events": n_events / sum(saves for _, saves in bulk_rounds),
    }


def _order(hubs: dict[str, Hub], r: int) -> list[str]:
    """Which hub goes first alternates by round, so neither always follows the raw inserts."""
    keys = list(hubs)
    return keys if r % 2 == 0 else keys[::-1]


def _commands(hub: Hub, customers: list[UUID], lo: int, hi: int, latencies: list[float]) -> float:
    """Seconds for touchpoints ``lo..hi``, one per command; each latency is appended."""
    started = time.perf_counter()
    for i in range(lo, hi):
        t = time.perf_counter()
        hub.execute(_call(customers[i % len(customers)], f"cmd-{i}", i))
        latencies.append(time.perf_counter() - t)
    return time.perf_counter() - started


def _digests(hub: Hub, commands: list[m.LogCall]) -> list[str]:
    """The source keys ``commands`` are stored under."""
    return [hub.naming.digest(hub.source_key_of(cmd)) for cmd in commands]


def _stored(floors: RowFloors, digests: list[str]) -> list[Pair]:
    """The rows stored under ``digests`` (each one event under its key), read back."""
    pairs = floors.read(digests)
    if len(pairs) != len(digests):
        raise RuntimeError(f"{len(pairs)} stored rows read back for {len(digests)} commands")
    return pairs


def _rounds(n: int, rounds: int) -> list[tuple[int, int]]:
    """``rounds`` contiguous slices of ``range(n)`` (fewer when n is small)."""
    rounds = max(1, min(rounds, n))
    cuts = [n * r // rounds for r in range(rounds + 1)]
    return [(lo, hi) for lo, hi in pairwise(cuts) if hi > lo]


def _heavy_vs_new(hub: Hub, settings: Settings, args: argparse.Namespace) -> dict[str, float]:
    """(d): the same commands, interleaved, on a long-history customer and a new one.

    Twice: through the running hub (its aggregate cache holds both customers),
    and through a hub without a cache, as after a restart or an eviction: every
    load then reads the latest snapshot and the events after it."""
    heavy, new = _register(hub, 2, "heavy")
    started = time.perf_counter()
    history = (_call(heavy, f"history-{i}", i) for i in range(args.history))
    recorded = sum(1 for r in BulkImporter(hub).iter_import(history) if r.ok)
    build_s = time.perf_counter() - started
    if recorded != args.history:
        raise RuntimeError(f"history build recorded {recorded} of {args.history} events")
    cached = _interleaved(hub, heavy, new, "cached", args.probe)
    uncached_hub = wiring.build_hub(settings, {"AGGREGATE_CACHE_MAXSIZE": ""})
    try:
        if uncached_hub.repository.cache is not None:
            raise RuntimeError("the uncached hub has an aggregate cache")
        uncached = _interleaved(uncached_hub, heavy, new, "uncached", args.probe)
    finally:
        uncached_hub.close()
    return {
        "heavy_history_events": float(args.history),
        "heavy_history_build_s": build_s,
        "heavy_history_build_events_per_s": args.history / build_s if build_s else 0.0,
        "heavy_command_mean_ms": statistics.fmean(cached[0]),
        "new_command_mean_ms": statistics.fmean(cached[1]),
        "heavy_uncached_command_mean_ms": statistics.fmean(uncached[0]),
        "new_uncached_command_mean_ms": statistics.fmean(uncached[1]),
        "heavy_uncached_command_p50_ms": statistics.median(uncached[0]),
        "new_uncached_command_p50_ms": statistics.median(uncached[1]),
    }


def _interleaved(
    hub: Hub, heavy: UUID, new: UUID, tag: str, n: int
) -> tuple[list[float], list[float]]:
    heavy_ms: list[float] = []
    new_ms: list[float] = []
    for i in range(n):
        heavy_ms.append(_timed(hub.execute, _call(heavy, f"{tag}-heavy-{i}", i)))
        new_ms.append(_timed(hub.execute, _call(new, f"{tag}-new-{i}", i)))
    return heavy_ms, new_ms


# ----------------------------------------------------------------- helpers
def _register(hub: Hub, n: int, tag: str) -> list[UUID]:
    run_id = uuid.uuid4().hex[:8]
    return [
        UUID(hub.execute(m.RegisterCustomer(
            name=f"Bench {tag} {i}", source_key=f"bench:{run_id}:{tag}:{i}",
        )).customer_id)
        for i in range(n)
    ]


def _call(customer_id: UUID, call_id: str, i: int) -> m.LogCall:
    """A typical inbound support call, as a PBX would report it."""
    return m.LogCall(
        customer_id=customer_id,
        call_id=call_id,
        direction="inbound",
        from_number="+442079460018",
        to_number="+442079460000",
        queue="support",
        agent=f"agent-{i % 17}",
        ivr_choices=["2", "1"],
        outcome="answered",
        duration_s=120 + i % 600,
        wait_s=i % 90,
        occurred_at=T0 + timedelta(seconds=37 * i),
        actor="pbx",
    )


def _sample_row(hub: Hub, customer_id: UUID) -> tuple[str, bytes]:
    """Topic and state bytes of a real stored touchpoint event: the raw rows' payload."""
    hub.execute(_call(customer_id, "sample", 0))
    (stored,) = hub.recorder.select_events(hub.naming.customer(customer_id), desc=True, limit=1)
    return stored.topic, bytes(stored.state)


def _timed(action: Callable[[m.LogCall], object], cmd: m.LogCall) -> float:
    """Milliseconds for one command (built beforehand: the command path is what is timed)."""
    started = time.perf_counter()
    action(cmd)
    return (time.perf_counter() - started) * 1000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _check(results: list[Any], n: int, *, duplicates: bool) -> None:
    """A benchmark that silently recorded nothing would measure nothing."""
    bad = [r for r in results if not r.ok or r.recorded.duplicate != duplicates]
    if len(results) != n or bad:
        raise RuntimeError(f"bulk import: {len(bad)} of {n} results unexpected: {bad[:3]}")


class _RawStore:
    """Plain sqlite3 / psycopg inserts into a table shaped like the library's events table."""

    def __init__(self, settings: Settings, hub: Hub, topic: str, state: bytes,
                 table: str = RAW_TABLE) -> None:
        self.kind = settings.event_store_kind
        self.table = table
        self.topic = topic
        self.state = state
        if self.kind == "sqlite":
            import sqlite3

            with hub.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
                c.execute("PRAGMA synchronous")
                synchronous = int(c.fetchone()[0])
            self.sqlite = sqlite3.connect(sqlite_path(settings.event_store), isolation_level=None)
            mode = self.sqlite.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise RuntimeError(f"raw SQLite connection is in {mode} mode, not WAL")
            self.sqlite.execute(f"PRAGMA synchronous={synchronous}")
            self.sqlite.execute(
                f"CREATE TABLE {self.table} (originator_id TEXT, originator_version INTEGER, "
                "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
            )
        else:
            self.pg = psycopg.connect(settings.event_store, autocommit=True)
            self.pg.execute(
                f"CREATE TABLE {self.table} (originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, topic text, state bytea, "
                "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
            )
            self.pg.execute(f"CREATE UNIQUE INDEX ON {self.table} (notification_id)")

    def _rows(self, n: int, streams: int) -> Iterator[tuple[Any, ...]]:
        ids = [uuid.uuid4() for _ in range(streams)]
        for i in range(n):
            oid = ids[i % streams]
            yield (oid.hex if self.kind == "sqlite" else oid, i // streams, self.topic, self.state)

    def single_commits(self, n: int, streams: int) -> float:
        """Seconds for ``n`` inserts, each its own durable transaction."""
        rows = list(self._rows(n, streams))
        sql = f"INSERT INTO {self.table} VALUES (?,?,?,?)"
        started = time.perf_counter()
        if self.kind == "sqlite":
            for row in rows:
                self.sqlite.execute("BEGIN")
                self.sqlite.execute(sql, row)
                self.sqlite.execute("COMMIT")
        else:
            insert = (f"INSERT INTO {self.table} (originator_id, originator_version, topic, state) "
                      "VALUES (%s,%s,%s,%s)")
            with self.pg.cursor() as cur:
                for row in rows:
                    cur.execute(insert, row, prepare=True)
        return time.perf_counter() - started

    def batched(self, n: int, streams: int) -> float:
        """Seconds for ``n`` rows, 1,000 per transaction (executemany / COPY)."""
        rows = list(self._rows(n, streams))
        batches = [rows[i:i + RAW_BATCH_ROWS] for i in range(0, n, RAW_BATCH_ROWS)]
        started = time.perf_counter()
        if self.kind == "sqlite":
            sql = f"INSERT INTO {self.table} VALUES (?,?,?,?)"
            for batch in batches:
                self.sqlite.execute("BEGIN")
                self.sqlite.executemany(sql, batch)
                self.sqlite.execute("COMMIT")
        else:
            copy_sql = (f"COPY {self.table} (originator_id, originator_version, topic, state) "
                        "FROM STDIN")
            for batch in batches:
                with self.pg.transaction(), self.pg.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in batch:
                        copy.write_row(row)
        return time.perf_counter() - started

    def close(self) -> None:
        if self.kind == "sqlite":
            self.sqlite.close()
        else:
            self.pg.close()
