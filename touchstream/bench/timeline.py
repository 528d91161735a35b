"""``touchstream bench timeline``: a 100,000-touchpoint customer's timeline, model and HTTP.

Measured in one run, on one fresh store (and (c), an account's timeline: see
``touchstream.bench.account_timeline``):

(a) the read model: ``resolved_page(limit=50)`` (resolve + page) as the route calls it,
    walking the whole timeline page by page with cursors (p50/p99);
(b) over HTTP against running servers (uvicorn, ``--workers`` processes each (default 1), the real app
    with API keys): the timeline route with those cursors, once with the read
    audit on (every page appends a durable access record, as served) and once
    with it off, and, as the ceiling, the app's trivial ``/health`` route; each
    driven by a keep-alive client with ``--connections`` connections for
    ``--seconds`` in all, split into ``--rounds`` rounds that take the three in
    turn (so a neighbour's load on a shared machine falls on all three alike);
    requests/s, latency, and the server's CPU time per request (all its threads).

``audited_vs_unaudited`` is the audited page rate over the unaudited one (target
≥ 0.9: the read audit may cost at most 10% of the timeline's throughput). It is a
throughput figure, so the load must keep the server busy in both runs: with few
connections a client waits out each durable commit (a few ms) and the figure
measures that latency instead (8 connections: ~0.8 on SQLite, ~0.5 on PostgreSQL,
where a commit is a round trip and an fsync of the server). Hence 32 by default,
the same for all three routes;
``http_vs_trivial`` is the unaudited route over ``/health``,
``http_vs_trivial_audited`` the audited one.

(c) the staff console's customer page for the same customer, timed at the server
    (``touchstream.bench.console``): ``console_page_p99_vs_200ms`` is its p99 over the
    200 ms target for the first screen (≤ 1 is met).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from projections import registry
from projections.engine import Worker
from projections.store import ReadStore
from projections.timeline.view import Cursor, TimelineView
from read_api.cursors import timeline_cursor
from replays.audit import access as access_log
from replays.progress import ProgressBar
from touchstream.adapters.keys import open_key_store
from touchstream.app import create_app
from touchstream.bench import account_timeline as account_bench
from touchstream.bench.console import TARGET_MS as CONSOLE_TARGET_MS
from touchstream.bench.console import first_screen_ms
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.bench.stores import fresh_settings
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.read_side import read_routes
from touchstream.settings import Settings
from touchstream.wiring import build_hub

NAME = "timeline"
TARGETS = {"http_vs_trivial": (">=", 0.5), "http_vs_trivial_audited": (">=", 0.45),
           "audited_vs_unaudited": (">=", 0.9), "console_page_p99_vs_200ms": ("<=", 1.0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--touchpoints", type=int, default=100_000,
                        help="touchpoints of the measured customer (default 100000)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="HTTP load per route, all rounds together (default 5)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent keep-alive HTTP connections, the same for every "
                             "route (default 32: enough agents reading at once that the "
                             "server, not one client's round trips, sets the rate)")
    parser.add_argument("--account-contacts", type=int, default=account_bench.DEFAULT_CONTACTS,
                        help="contacts of the measured account (default 500)")
    parser.add_argument("--account-touchpoints", type=int,
                        default=account_bench.DEFAULT_TOUCHPOINTS,
                        help="touchpoints per contact of the account (default 200)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes per server, as 'touchstream serve "
                             "--workers N' (default 1)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds the HTTP load is split into, each taking /health, the "
                             "audited and the unaudited timeline in turn (default 5)")


def served_app() -> FastAPI:
    """uvicorn factory: the real app with the read routes, settings from the environment."""
    deps = bootstrap()
    return create_app(deps, routers=[read_routes], services=[deps])


def served_app_unaudited() -> FastAPI:
    """uvicorn factory: as ``served_app`` with the read audit off (the cost baseline)."""
    deps = bootstrap()
    return create_app(deps, routers=[partial(read_routes, audited=False)], services=[deps])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    with fresh_settings(args.store) as settings:
        return _measure(settings, args)


def _measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    hub = build_hub(settings)
    rnd = random.Random(7)
    big = new_customer(hub, "Ada Lovelace", rnd)
    # The bench CLI passes a bar that draws only on a terminal; direct callers get none.
    bar = getattr(args, "setup_progress", None) or ProgressBar("set-up", enabled=False)
    total = args.touchpoints + 20 * 200
    add_touchpoints(hub, big, args.touchpoints, rnd, progress=lambda n: bar(n, total))
    for k in range(20):  # neighbours, so the index holds more than one customer
        add_touchpoints(hub, new_customer(hub, f"Neighbour {k}", rnd), 200, rnd)
        bar(args.touchpoints + (k + 1) * 200, total)
    contacts = getattr(args, "account_contacts", account_bench.DEFAULT_CONTACTS)
    account = account_bench.set_up(
        hub, contacts, getattr(args, "account_touchpoints", account_bench.DEFAULT_TOUCHPOINTS),
        rnd)
    bar.done()
    deps = Dependencies(settings, hub=hub)
    store = deps.read_store
    db = store.connect()
    Worker(db, deps.event_source(), [(p, None) for p in registry.select(None)]).catch_up()
    db.close()
    root = str(big.id)

    view = TimelineView(store)
    model: list[float] = []
    cursors: list[str] = []
    cursor = None
    while True:
        started = time.perf_counter()
        both = view.resolved_page(root, limit=50, cursor=cursor)
        assert both is not None
        page = both[1]
        model.append(time.perf_counter() - started)
        if page.next_cursor is None:
            break
        cursors.append(page.next_cursor)
        cursor = Cursor.decode(page.next_cursor)

    account_figures = {"account_contacts": contacts,
                       **account_bench.measure(store, account)}

    keys = open_key_store(settings)
    token = keys.create("agent", None, "bench")[1]
    console = first_screen_ms(deps, keys, root)
    keys.close()
    hub.close()
    # The API's cursors are bound to the customer asked for (read_api.cursors).
    paths = [f"/customers/{root}/timeline?limit=50"] + [
        f"/customers/{root}/timeline?limit=50&cursor="
        f"{timeline_cursor(Cursor.decode(c), root)}" for c in cursors]
    http = _http(settings, token, paths, args.seconds, args.connections,
                 getattr(args, "rounds", 5), max(1, getattr(args, "workers", 1)))
    on, off, trivial = http["audited"], http["page"], http["trivial"]
    return {
        "scenario": NAME,
        "store": args.store,
        "figures": {
            "touchpoints": args.touchpoints,
            "workers": max(1, getattr(args, "workers", 1)),
            "pages": len(model),
            "page_p50_ms": round(statistics.median(model) * 1e3, 3),
            "page_p99_ms": round(_pct(model, 0.99) * 1e3, 3),
            "http_page_p50_ms": off["p50_ms"],
            "http_page_p99_ms": off["p99_ms"],
            "http_page_requests_per_s": off["rps"],
            "http_audited_page_p50_ms": on["p50_ms"],
            "http_audited_page_p99_ms": on["p99_ms"],
            "http_audited_page_requests_per_s": on["rps"],
            "http_page_server_cpu_ms": off["cpu_ms"],
            "http_audited_page_server_cpu_ms": on["cpu_ms"],
            "http_trivial_p99_ms": trivial["p99_ms"],
            "http_trivial_requests_per_s": trivial["rps"],
            "access_records": http["access_records"],
            **account_figures,
            # what recording a read adds to each page, in % of the unaudited rate
            "audit_cost_pct": round(100 * (1 - on["rps"] / off["rps"]), 1),
            **console,
        },
        "ratios": {"http_vs_trivial": round(off["rps"] / trivial["rps"], 3),
                   "http_vs_trivial_audited": round(on["rps"] / trivial["rps"], 3),
                   "audited_vs_unaudited": round(on["rps"] / off["rps"], 3),
                   "console_page_p99_vs_200ms": round(console["console_page_p99_ms"]
                                                      / CONSOLE_TARGET_MS, 3)},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(settings: Settings, token: str, paths: list[str], seconds: float,
          connections: int, rounds: int, workers: int = 1) -> dict[str, Any]:
    auth = f"Authorization: Bearer {token}\r\n"
    with ExitStack() as stack:
        audited = stack.enter_context(_server(settings, "served_app", workers))
        unaudited = stack.enter_context(_server(settings, "served_app_unaudited", workers))
        loads = {"trivial": (audited, ["/health"], ""), "audited": (audited, paths, auth),
                 "page": (unaudited, paths, auth)}
        for server, wanted, header in loads.values():  # warm-up
            asyncio.run(_load(server.port, wanted, header, 1.0, connections))
        before = _access_records(settings)
        rounds = max(1, rounds)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in loads}
        order = list(loads)
        for k in range(rounds):
            for name in order[k % 3:] + order[:k % 3]:  # each goes first in turn
                server, wanted, header = loads[name]
                cpu = _cpu_s(server)
                done = asyncio.run(_load(server.port, wanted, header, seconds / rounds,
                                         connections))
                runs[name].append({**done, "cpu_s": _cpu_s(server) - cpu})
        out: dict[str, Any] = {name: _merged(done) for name, done in runs.items()}
        out["access_records"] = _access_records(settings) - before
        if out["access_records"] != out["audited"]["requests"]:  # the audit really ran
            raise RuntimeError(f"{out['audited']['requests']} audited pages but "
                               f"{out['access_records']} access records")
        return out


@dataclass(frozen=True)
class _Server:
    port: int
    pid: int


def _cpu_s(server: _Server) -> float:
    """CPU seconds (user + system, all threads) the server and every process under it
    (uvicorn's workers, the read audit's writer processes) have used so far; 0 where
    there is no ``/proc`` (the CPU figures then read 0)."""
    parent: dict[str, str] = {}
    cpu: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parent[stat.parent.name] = fields[1]
        cpu[stat.parent.name] = int(fields[11]) + int(fields[12])
    total = 0
    for pid, ticks in cpu.items():
        at, hops = pid, 0
        while at in parent and at != str(server.pid) and hops < 16:
            at, hops = parent[at], hops + 1
        if at == str(server.pid):
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server(settings: Settings, factory: str, workers: int = 1) -> Iterator[_Server]:
    """A uvicorn process serving ``touchstream.bench.timeline:<factory>`` (``workers``
    processes)."""
    port = _free_port()
    env = {**os.environ, "TOUCHSTREAM_DATA": str(settings.data_dir),
           "TOUCHSTREAM_EVENT_STORE": settings.event_store,
           "TOUCHSTREAM_READ_STORE": settings.read_store}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", f"touchstream.bench.timeline:{factory}",
         "--port", str(port), "--log-level", "warning", "--no-access-log",
         *(["--workers", str(workers)] if workers > 1 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    # Stopped first: reading the pipe of a live server would wait forever.
                    server.kill()
                    _, err = server.communicate(timeout=30)
                    raise RuntimeError("the server did not start within 60 s: "
                                       + (err.decode() if err else ""))
                time.sleep(0.1)
        yield _Server(port, server.pid)
    finally:
        server.terminate()
        server.wait(30)


def _access_records(settings: Settings) -> int:
    db = ReadStore(settings.read_store).connect()
    try:
        access_log.ensure_schema(db)
        return int(db.scalar("SELECT COUNT(*) FROM audit_access"))
    finally:
        db.close()


def _merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure set from several rounds: all requests over all the time spent."""
    latencies = [x for run in runs for x in run["latencies"]]
    elapsed = sum(run["elapsed"] for run in runs)
    cpu = sum(run["cpu_s"] for run in runs)
    return {"requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "cpu_ms": round(cpu / len(latencies) * 1e3, 3),
            "p50_ms": round(statistics.median(latencies) * 1e3, 3),
            "p99_ms": round(_pct(latencies, 0.99) * 1e3, 3)}


async def _load(port: int, paths: list[str], auth: str, seconds: float,
                connections: int) -> dict[str, Any]:
    """Keep-alive GETs cycling over ``paths`` for ``seconds``: each latency, time spent."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    requests = [f"GET {p} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode() for p in paths]

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(requests[i % len(requests)])
                i += connections
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12]
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                if status != b"200":  # with the reason, so a failed run says why
                    raise RuntimeError(f"HTTP {status.decode()} from the benchmarked route: "
                                       f"{body[:500].decode(errors='replace')}")
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(connections)))
    return {"latencies": latencies, "elapsed": time.perf_counter() - started}

