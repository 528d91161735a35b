"""``touchstream bench audit``: sealing and verifying the log against raw SHA-256 of its bytes.

Measured in one run, on one fresh store of ``--events`` events:

(a) the ceiling: read every stored event record through the recorder in the
    same batches and SHA-256 its canonical bytes (nothing else);
(b) the first seal over the whole log (leaf hashes, tree, leaf cache, signature);
(c) a full ``audit verify`` (every seal, every event, compared with the leaf cache);
    ``verify_vs_raw_sha256`` is (c)'s events/s over (a)'s;
(d) after ``--new`` more events: an incremental seal and a ``--from-seal`` verify,
    which read only the new events;
(e) inclusion and consistency proofs against the latest seal: size, time to build
    (leaf hashes from the cache, then the proof) and time to check.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from typing import Any

from replays.audit.log import read_batches, stored_record
from replays.audit.merkle import consistency_proof, inclusion_proof
from replays.audit.standalone_verify import verify_consistency, verify_inclusion
from replays.audit.verify import verify_log
from touchstream.audit_wiring import Audit, open_audit
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.bench.stores import fresh_settings

NAME = "audit"
TARGETS = {"verify_vs_raw_sha256": (">=", 0.5)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=100_000,
                        help="events in the log when first sealed (default 100000; "
                             "try 1000000)")
    parser.add_argument("--new", type=int, default=1_000,
                        help="events added before the incremental seal (default 1000)")
    parser.add_argument("--customers", type=int, default=200,
                        help="customers the events are spread over (default 200)")
    parser.add_argument("--proofs", type=int, default=20, help="proofs timed (default 20)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with fresh_settings(args.store) as settings, open_audit(settings) as audit:
        return _measure(audit, args)


def _fill(audit: Audit, events: int, customers: int, rnd: random.Random) -> None:
    per = max(1, events // customers - 2)
    for k in range(customers):
        add_touchpoints(audit.hub, new_customer(audit.hub, f"Customer {k}", rnd), per, rnd)


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
    _fill(audit, args.events, args.customers, rnd)
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

    started = time.perf_counter()
    hashes = audit.seals.leaf_hashes(second.tree_size)
    load_s = time.perf_counter() - started
    build, check, sizes = [], [], []
    root2 = bytes.fromhex(second.root)
    for _ in range(args.proofs):
        index = rnd.randrange(second.tree_size)
        t0 = time.perf_counter()
        proof = inclusion_proof(hashes, index, second.tree_size)
        t1 = time.perf_counter()
        verify_inclusion(index, second.tree_size, hashes[index], proof, root2)
        build.append(t1 - t0)
        check.append(time.perf_counter() - t1)
        sizes.append(32 * len(proof))
    t0 = time.perf_counter()
    cproof = consistency_proof(hashes, first.tree_size, second.tree_size)
    t1 = time.perf_counter()
    verify_consistency(first.tree_size, second.tree_size, bytes.fromhex(first.root), root2,
                       cproof)
    t2 = time.perf_counter()

    raw_rate = n / raw_s
    verify_rate = report.events_read / verify_s
    return {
        "scenario": NAME, "store": args.store,
        "figures": {
            "events": n,
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
            "leaf_hashes_load_s": load_s,
            "inclusion_proof_bytes": statistics.mean(sizes),
            "inclusion_proof_build_ms": 1e3 * statistics.mean(build),
            "inclusion_proof_check_ms": 1e3 * statistics.mean(check),
            "consistency_proof_bytes": 32 * len(cproof),
            "consistency_proof_build_ms": 1e3 * (t1 - t0),
            "consistency_proof_check_ms": 1e3 * (t2 - t1),
        },
        "ratios": {"verify_vs_raw_sha256": verify_rate / raw_rate},
    }
