"""``touchstream bench audit``: sealing and verifying the log against raw SHA-256 of its bytes.

The log: ``--sample`` real touchpoints through the write model (encrypted with their
customers' keys, as served), then, up to ``--events``, rows of the same shape inserted
through the event store's recorder in bulk: each a sampled record's topic and stored
bytes under a fresh stream id and version (so 1,000,000 events take minutes, not
hours; the audit reads stored bytes only, never decodes them).

Measured in one run, on one fresh store:

(a) the ceiling: read every stored event record through the recorder in the
    same batches and SHA-256 its canonical bytes (nothing else);
(b) the first seal over the whole log (leaf hashes, tree, leaf cache, signature);
(c) a full ``audit verify`` (every seal, every event, compared with the leaf cache);
    ``verify_vs_raw_sha256`` is (c)'s events/s over (a)'s;
(d) after ``--new`` more events: an incremental seal and a ``--from-seal`` verify,
    which read only the new events;
(e) inclusion and consistency proofs against the latest seal: size, time to build
    from the seal store's hashes (a fresh reader each time, so its reads are counted)
    and time to check;
(f) unless ``--timeline-touchpoints 0``: ``bench timeline`` at a small size, for the
    read audit's cost (``timeline_audited_vs_unaudited``, target ≥ 0.9).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import random
import statistics
import time
import uuid
from typing import Any

from eventsourcing.persistence import StoredEvent

from replays.audit.log import read_batches, stored_record
from replays.audit.standalone_verify import verify_consistency, verify_inclusion
from replays.audit.verify import verify_log
from touchstream.audit_wiring import Audit, open_audit
from touchstream.bench import timeline as timeline_bench
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.bench.stores import fresh_settings

NAME = "audit"
TARGETS = {"verify_vs_raw_sha256": (">=", 0.5), "timeline_audited_vs_unaudited": (">=", 0.9)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=100_000,
                        help="events in the log when first sealed (default 100000; "
                             "try 1000000)")
    parser.add_argument("--new", type=int, default=1_000,
                        help="events added before the incremental seal (default 1000)")
    parser.add_argument("--customers", type=int, default=200,
                        help="customers the events are spread over (default 200)")
    parser.add_argument("--sample", type=int, default=2_000,
                        help="real touchpoints recorded first, whose shapes the bulk rows "
                             "copy (default 2000)")
    parser.add_argument("--proofs", type=int, default=20, help="proofs timed (default 20)")
    parser.add_argument("--timeline-touchpoints", type=int, default=2_000,
                        help="size of the timeline run for the read audit's cost "
                             "(default 2000; 0 leaves it out)")
    parser.add_argument("--timeline-seconds", type=float, default=6.0,
                        help="HTTP load per timeline route (default 6)")
    parser.add_argument("--timeline-connections", type=int, default=32,
                        help="concurrent clients of the timeline run (default 32)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with fresh_settings(args.store) as settings, open_audit(settings) as audit:
        return _measure(audit, args)


def _fill(audit: Audit, events: int, customers: int, sample: int,
          rnd: random.Random) -> int:
    """The log of ``events`` events; returns how many went through the write model."""
    real = max(1, min(events, sample))
    per = max(1, real // customers - 2)
    for k in range(customers):
        if k and k * (per + 2) >= real:
            break
        add_touchpoints(audit.hub, new_customer(audit.hub, f"Customer {k}", rnd), per, rnd)
    shapes = [(n.topic, bytes(n.state), type(n.originator_id))
              for batch in read_batches(audit.log, None) for n in batch]
    recorded = len(shapes)
    _bulk(audit, events - recorded, max(1, events // customers), shapes)
    return recorded


def _bulk(audit: Audit, count: int, per_stream: int,
          shapes: list[tuple[str, bytes, type]]) -> None:
    """``count`` rows shaped like ``shapes``, ``per_stream`` to a stream, in chunks (a
    PostgreSQL save of ~1 MB can hang psycopg: see the field guide)."""
    cycle = itertools.cycle(shapes)
    chunk = 500
    stream, version = uuid.uuid4(), 0
    done = 0
    while done < count:
        rows = []
        for _ in range(min(chunk, count - done)):
            topic, state, id_type = next(cycle)
            rows.append(StoredEvent(originator_id=stream if id_type is uuid.UUID else str(stream),
                                    originator_version=version, topic=topic, state=state))
            version += 1
            if version == per_stream:
                stream, version = uuid.uuid4(), 0
        audit.hub.recorder.insert_events(rows)
        done += len(rows)


def _raw_sha256(audit: Audit) -> tuple[int, float, int]:
    started = time.perf_counter()
    n = size = 0
    for batch in read_batches(audit.log, None):
        for record in batch:
            data = stored_record(record)
            hashlib.sha256(data).digest()
            size += len(data)
            n += 1
    return n, time.perf_counter() - started, size


def _measure(audit: Audit, args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(42)
    started = time.perf_counter()
    recorded = _fill(audit, args.events, args.customers, getattr(args, "sample", 2_000), rnd)
    fill_s = time.perf_counter() - started
    key = audit.key(create=True)

    n, raw_s, raw_bytes = _raw_sha256(audit)
    started = time.perf_counter()
    first = audit.seal()
    seal_s = time.perf_counter() - started

    started = time.perf_counter()
    report = verify_log(audit.seals, audit.log, key.public_key)
    verify_s = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"the fresh log does not verify: {report.findings[:3]}")

    add_touchpoints(audit.hub, new_customer(audit.hub, "Later", rnd), args.new, rnd)
    started = time.perf_counter()
    second = audit.seal()
    seal_incr_s = time.perf_counter() - started
    started = time.perf_counter()
    incremental = verify_log(audit.seals, audit.log, key.public_key, from_seal=first.seal)
    verify_incr_s = time.perf_counter() - started

    build, check, sizes = [], [], []
    size2, root2 = second.tree_size, bytes.fromhex(second.root)
    for _ in range(args.proofs):
        index = rnd.randrange(size2)
        t0 = time.perf_counter()
        tree = audit.seals.tree()  # a fresh reader: every read of the proof is timed
        proof, leaf = tree.inclusion(index, size2), tree.perfect(0, index)
        t1 = time.perf_counter()
        verify_inclusion(index, size2, leaf, proof, root2)
        build.append(t1 - t0)
        check.append(time.perf_counter() - t1)
        sizes.append(32 * len(proof))
    t0 = time.perf_counter()
    cproof = audit.seals.tree().consistency(first.tree_size, size2)
    t1 = time.perf_counter()
    verify_consistency(first.tree_size, size2, bytes.fromhex(first.root), root2, cproof)
    t2 = time.perf_counter()
    timeline = _timeline(args)

    raw_rate = n / raw_s
    verify_rate = report.events_read / verify_s
    return {
        "scenario": NAME, "store": args.store,
        "figures": {
            "events": n,
            "events_through_write_model": recorded,
            "fill_s": fill_s,
            "stored_mb": raw_bytes / 1e6,
            "raw_sha256_events_per_s": raw_rate,
            "seal_first_s": seal_s,
            "seal_first_events_per_s": first.tree_size / seal_s,
            "verify_full_s": verify_s,
            "verify_full_events_per_s": verify_rate,
            "new_events": second.tree_size - first.tree_size,
            "seal_incremental_s": seal_incr_s,
            "verify_incremental_s": verify_incr_s,
            "verify_incremental_events_read": incremental.events_read,
            "inclusion_proof_bytes": statistics.mean(sizes),
            "inclusion_proof_build_ms": 1e3 * statistics.mean(build),
            "inclusion_proof_check_ms": 1e3 * statistics.mean(check),
            "consistency_proof_bytes": 32 * len(cproof),
            "consistency_proof_build_ms": 1e3 * (t1 - t0),
            "consistency_proof_check_ms": 1e3 * (t2 - t1),
            **{f"timeline_{k}": v for k, v in timeline["figures"].items()},
        },
        "ratios": {"verify_vs_raw_sha256": verify_rate / raw_rate,
                   **{f"timeline_{k}": v for k, v in timeline["ratios"].items()}},
    }


def _timeline(args: argparse.Namespace) -> dict[str, Any]:
    """``bench timeline`` at a small size on its own fresh store: the read audit's cost."""
    touchpoints = getattr(args, "timeline_touchpoints", 0)
    if touchpoints <= 0:
        return {"figures": {}, "ratios": {}}
    done = timeline_bench.run(argparse.Namespace(
        store=args.store, touchpoints=touchpoints,
        seconds=getattr(args, "timeline_seconds", 6.0),
        connections=getattr(args, "timeline_connections", 32), rounds=3,
        # only the read audit's ratio is wanted: a token account, not the 100,000-touchpoint
        # one ``bench timeline`` measures its account page on
        account_contacts=2, account_touchpoints=2))
    wanted = ("http_page_requests_per_s", "http_audited_page_requests_per_s",
              "http_page_server_cpu_ms", "http_audited_page_server_cpu_ms", "access_records")
    return {"figures": {k: done["figures"][k] for k in wanted},
            "ratios": {"audited_vs_unaudited": done["ratios"]["audited_vs_unaudited"]}}
