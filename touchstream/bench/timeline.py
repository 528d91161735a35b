"""``touchstream bench timeline``: a 100,000-touchpoint customer's timeline, model and HTTP.

Measured in one run, on one fresh store:

(a) the read model: ``resolve`` + ``page(limit=50)`` as the route calls them,
    walking the whole timeline page by page with cursors (p50/p99);
(b) over HTTP against a running server (uvicorn, one worker, the real app with
    API keys): the timeline route with those cursors and, as the ceiling, the
    app's trivial ``/health`` route, each driven by a keep-alive client with
    ``--connections`` connections for ``--seconds``; requests/s and latency.
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
from typing import Any

from fastapi import FastAPI

from projections import registry
from projections.engine import Worker
from projections.timeline.view import Cursor, TimelineView
from read_api.cursors import timeline_cursor
from replays.progress import ProgressBar
from touchstream.adapters.keys import open_key_store
from touchstream.app import create_app
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.bench.stores import fresh_settings
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.read_side import read_routes
from touchstream.settings import Settings
from touchstream.wiring import build_hub

NAME = "timeline"
TARGETS = {"http_vs_trivial": (">=", 0.5)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--touchpoints", type=int, default=100_000,
                        help="touchpoints of the measured customer (default 100000)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="HTTP load per route (default 5)")
    parser.add_argument("--connections", type=int, default=8,
                        help="concurrent keep-alive HTTP connections (default 8)")


def served_app() -> FastAPI:
    """uvicorn factory: the real app with the read routes, settings from the environment."""
    deps = bootstrap()
    return create_app(deps, routers=[read_routes], services=[deps])


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
        found = view.resolve(root)
        assert found is not None
        page = view.page(found.root, limit=50, cursor=cursor)
        model.append(time.perf_counter() - started)
        if page.next_cursor is None:
            break
        cursors.append(page.next_cursor)
        cursor = Cursor.decode(page.next_cursor)

    keys = open_key_store(settings)
    token = keys.create("agent", None, "bench")[1]
    keys.close()
    hub.close()
    # The API's cursors are bound to the customer asked for (read_api.cursors).
    paths = [f"/customers/{root}/timeline?limit=50"] + [
        f"/customers/{root}/timeline?limit=50&cursor="
        f"{timeline_cursor(Cursor.decode(c), root)}" for c in cursors]
    http = _http(settings, token, paths, args.seconds, args.connections)
    return {
        "scenario": NAME,
        "store": args.store,
        "figures": {
            "touchpoints": args.touchpoints,
            "pages": len(model),
            "page_p50_ms": round(statistics.median(model) * 1e3, 3),
            "page_p99_ms": round(_pct(model, 0.99) * 1e3, 3),
            "http_page_p50_ms": http["page"]["p50_ms"],
            "http_page_p99_ms": http["page"]["p99_ms"],
            "http_page_requests_per_s": http["page"]["rps"],
            "http_trivial_p99_ms": http["trivial"]["p99_ms"],
            "http_trivial_requests_per_s": http["trivial"]["rps"],
        },
        "ratios": {"http_vs_trivial": round(http["page"]["rps"] / http["trivial"]["rps"], 3)},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(settings: Settings, token: str, paths: list[str], seconds: float,
          connections: int) -> dict[str, dict[str, float]]:
    port = _free_port()
    env = {**os.environ, "TOUCHSTREAM_DATA": str(settings.data_dir),
           "TOUCHSTREAM_EVENT_STORE": settings.event_store,
           "TOUCHSTREAM_READ_STORE": settings.read_store}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "touchstream.bench.timeline:served_app",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start: "
                                       + (server.stderr.read().decode() if server.stderr else ""))
                time.sleep(0.1)
        auth = f"Authorization: Bearer {token}\r\n"
        asyncio.run(_load(port, ["/health"], "", 1.0, connections))  # warm-up
        asyncio.run(_load(port, paths, auth, 1.0, connections))
        return {"trivial": asyncio.run(_load(port, ["/health"], "", seconds, connections)),
                "page": asyncio.run(_load(port, paths, auth, seconds, connections))}
    finally:
        server.terminate()
        server.wait(30)


async def _load(port: int, paths: list[str], auth: str, seconds: float,
                connections: int) -> dict[str, float]:
    """Keep-alive GETs cycling over ``paths``: requests/s and latency percentiles."""
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
                await reader.readexactly(length)
                if status != b"200":
                    raise RuntimeError(f"HTTP {status.decode()} from the benchmarked route")
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(connections)))
    elapsed = time.perf_counter() - started
    return {"rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1e3, 3),
            "p99_ms": round(_pct(latencies, 0.99) * 1e3, 3)}

