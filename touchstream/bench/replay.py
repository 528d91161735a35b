"""``touchstream bench replay``: an analyst replay against the raw log read, its RSS, and
the Parquet export rate.

Measured in one run, on one fresh store:

(a) the ceiling: reading and decoding (decrypting) every event of the log in
    batches of 1,000, as a replay reads it, nothing else;
(b) ``touchstream replay run`` of a trivial analyst file (one row per event:
    position, type, channel) into Parquet, as a real process: the events/s it
    reports (read, decode, hand to the sandboxed child, rows back, written),
    and the peak RSS of the process and its child (flat in N: batches stream);
(c) ``touchstream export events`` into a fresh folder, as a real process.

``replay_vs_raw_read`` is (b)'s rate over (a)'s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from domain.customer import Customer
from domain.records import Record
from projections.engine import EventSource
from replays.progress import ProgressBar
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.bench.stores import fresh_settings
from touchstream.bootstrap import Dependencies
from touchstream.settings import Settings
from touchstream.wiring import build_hub

NAME = "replay"
TARGETS = {"replay_vs_raw_read": (">=", 0.5)}
TRIVIAL = '''"""One row per event (the benchmark's trivial analyst projection)."""
NAME = "every_event"
COLUMNS = {"type": "text", "channel": "text"}

def on_event(event, emit):
    emit(type=type(event).__name__, channel=getattr(event, "channel", None))
'''


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200_000,
                        help="events in the log (default 200000; the target is stated at 1000000)")
    parser.add_argument("--customers", type=int, default=1_000,
                        help="customers the events are spread over (default 1000)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with fresh_settings(args.store) as settings:
        return _measure(settings, args)


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "TOUCHSTREAM_DATA": str(settings.data_dir),
            "TOUCHSTREAM_EVENT_STORE": settings.event_store,
            "TOUCHSTREAM_READ_STORE": settings.read_store}


def _raw_read(source: EventSource) -> tuple[int, float]:
    started = time.perf_counter()
    pos = decoded = 0
    while True:
        notes = source.read(pos, 1_000)
        if not notes:
            break
        decoded += len(source.decode(notes, (Customer.Event, Record.Event)))
        pos = int(notes[-1].id)
    return decoded, time.perf_counter() - started


def _cli(settings: Settings, *args: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "touchstream.cli", *args, "--json"],
                          env=_env(settings), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary, seconds


def _measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    hub = build_hub(settings)
    bar = getattr(args, "setup_progress", None) or ProgressBar("set-up", enabled=False)
    rnd = random.Random(42)
    per = max(1, args.events // args.customers - 2)
    for k in range(args.customers):
        add_touchpoints(hub, new_customer(hub, f"Customer {k}", rnd), per, rnd)
        bar((k + 1) * per, args.customers * per)
    bar.done()
    deps = Dependencies(settings, hub=hub)
    source = deps.event_source()
    head = source.head()
    decoded, raw_s = _raw_read(source)
    source.close()
    hub.close()
    with tempfile.TemporaryDirectory(prefix="touchstream-bench-replay-") as tmp:
        spec = Path(tmp) / "trivial.py"
        spec.write_text(TRIVIAL)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        replayed, replay_wall_s = _cli(settings, "replay", "run", str(spec),
                                       "--out", str(Path(tmp) / "out.parquet"))
        peak_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        exported, export_wall_s = _cli(settings, "export", "events", "--out",
                                       str(Path(tmp) / "export"))
    raw_rate = decoded / raw_s
    replay_rate = replayed["events_read"] / replayed["seconds"]
    return {
        "scenario": NAME,
        "store": args.store,
        "figures": {
            "events": head,
            "raw_read_events_per_s": round(raw_rate, 1),
            "replay_events_per_s": round(replay_rate, 1),
            "replay_rows": replayed["rows"],
            "replay_process_wall_s": round(replay_wall_s, 2),
            "replay_peak_rss_mb": round(peak_kb / 1024, 1),
            "export_events_per_s": round(exported["events"] / exported["seconds"], 1),
            "export_process_wall_s": round(export_wall_s, 2),
        },
        "ratios": {"replay_vs_raw_read": round(replay_rate / raw_rate, 3)},
    }
