"""Verification: recompute the tree from the stored events and check every seal against it.

What is checked, in order:

1. Every seal's signature (with the trusted public key), its numbering and its link to the
   previous seal: a forged, re-signed, removed or reordered seal is named.
2. The tree recomputed from the event store, leaf by leaf in log order: at each seal's
   size its root must equal the signed root.
3. Where a root differs, the recomputed leaves are compared with the leaf cache written
   at sealing time (itself checked against the signed roots) to name what happened and
   where: a changed event, a deleted event, a truncated tail, two swapped events, an event
   inserted at a past position.

Streaming: memory stays flat while the leaves agree; only after the first difference are
the remaining leaves kept, to classify the differences.

Incremental: ``from_seal=N`` starts from seal N's stored frontier (checked against its
signed root), so only the events after seal N are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from replays.audit.log import Leaf, NotificationLog, leaves
from replays.audit.merkle import Frontier
from replays.audit.seals import Seal, SealStore
from replays.audit.standalone_verify import VerificationError, seal_digest, verify_seal

MAX_FINDINGS = 50


@dataclass(frozen=True)
class Finding:
    """One thing wrong: its kind, the seal and log position concerned, and a sentence."""

    kind: str  # seal-signature, seal-chain, seal-root, seal-frontier, changed, deleted,
    # truncated, swapped, inserted, moved, cache
    detail: str
    seal: int | None = None
    position: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seal": self.seal, "position": self.position,
                "detail": self.detail}


@dataclass
class Report:
    seals_checked: int = 0
    first_seal: int | None = None
    last_seal: int | None = None
    events_read: int = 0
    tree_size: int = 0
    unsealed: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "seals_checked": self.seals_checked,
                "first_seal": self.first_seal, "last_seal": self.last_seal,
                "events_read": self.events_read, "tree_size": self.tree_size,
                "unsealed_events": self.unsealed,
                "findings": [f.to_json() for f in self.findings]}


def check_seals(seals: list[Seal], public_key: Any, report: Report,
                before: Seal | None = None) -> None:
    """Signatures, numbering and links; ``before`` is the seal preceding ``seals[0]``."""
    previous = before
    for seal in seals:
        try:
            verify_seal(seal.to_json(), public_key)
        except VerificationError as exc:
            report.add(Finding("seal-signature", f"seal {seal.seal} is forged or re-signed: "
                               f"{exc}", seal=seal.seal))
        if previous is not None:
            if seal.seal != previous.seal + 1:
                report.add(Finding("seal-chain", f"seals {previous.seal + 1}..{seal.seal - 1} "
                                   "are missing", seal=seal.seal))
            elif seal.previous != seal_digest(previous.to_json()):
                report.add(Finding("seal-chain", f"seal {seal.seal} does not link to seal "
                                   f"{previous.seal} (one of them was rewritten)", seal=seal.seal))
            if seal.tree_size < previous.tree_size:
                report.add(Finding("seal-chain", f"seal {seal.seal} covers fewer events than "
                                   f"seal {previous.seal}", seal=seal.seal))
        elif seal.seal == 1 and seal.previous:
            report.add(Finding("seal-chain", "seal 1 claims a predecessor", seal=1))
        previous = seal


def _flat(batches: Iterator[list[Leaf]]) -> Iterator[Leaf]:
    for batch in batches:
        yield from batch


def verify_log(store: SealStore, log: NotificationLog, public_key: Any,
               from_seal: int | None = None) -> Report:
    """Check the seals (from ``from_seal``, default all) against the event log."""
    report = Report()
    all_seals = store.seals()
    if from_seal is not None:
        anchor = next((s for s in all_seals if s.seal == from_seal), None)
        if anchor is None:
            raise VerificationError(f"no seal {from_seal}")
        before = next((s for s in all_seals if s.seal == from_seal - 1), None)
        seals = [s for s in all_seals if s.seal >= from_seal]
    else:
        anchor, before, seals = None, None, all_seals
    report.seals_checked = len(seals)
    if seals:
        report.first_seal, report.last_seal = seals[0].seal, seals[-1].seal
    check_seals(seals, public_key, report, before)

    frontier, after, start = Frontier(), None, 0
    if anchor is not None:
        frontier = store.frontier(anchor.seal)
        if frontier.size != anchor.tree_size or frontier.root().hex() != anchor.root:
            report.add(Finding("seal-frontier", f"the stored frontier of seal {anchor.seal} does "
                               "not match its signed root: verify without --from-seal",
                               seal=anchor.seal))
            return report
        after = anchor.last_position if anchor.tree_size else None
        start = anchor.tree_size
    _walk(store, log, frontier, after, start, [s for s in seals if s.tree_size >= start], report)
    return report


def _walk(store: SealStore, log: NotificationLog, frontier: Frontier, after: int | None,
          start: int, seals: list[Seal], report: Report) -> None:
    by_size: dict[int, list[Seal]] = {}
    for seal in seals:
        by_size.setdefault(seal.tree_size, []).append(seal)
    sealed_size = max(by_size, default=start)
    last_sealed_position = max((s.last_position for s in seals), default=0)
    cache = frontier.copy()
    cache_ok = _check_roots(frontier, by_size.get(frontier.size, ()), report)
    fresh = _flat(leaves(log, after))
    cached = _flat(store.cached_leaves(start))
    rest_a: list[Leaf] = []  # sealed leaves (from the cache) from the first difference on
    rest_b: list[Leaf] = []  # recomputed leaves from the first difference on
    diverged = False
    while True:
        b = next(fresh, None)
        a = next(cached, None) if cache.size < sealed_size else None
        if a is None and b is None:
            break
        if b is not None:
            frontier.append(b[1])
            report.events_read += 1
            if frontier.size in by_size:
                _check_roots(frontier, by_size[frontier.size], report)
        if a is not None:
            cache.append(a[1])
            if cache.size in by_size and any(s.root != cache.root().hex()
                                             for s in by_size[cache.size]):
                cache_ok = False
        if not diverged:
            if a is None:
                diverged = b is not None and b[0] <= last_sealed_position
            else:
                diverged = b is None or a[1] != b[1]
        if diverged:
            if a is not None:
                rest_a.append(a)
            if b is not None:
                rest_b.append(b)
    for size, group in by_size.items():
        if size > frontier.size:
            for seal in group:
                report.add(Finding("seal-root", f"seal {seal.seal} covers {size} events but "
                                   f"the log now holds {frontier.size}", seal=seal.seal))
        if size > cache.size:
            cache_ok = False
    report.tree_size = frontier.size
    report.unsealed = max(0, frontier.size - sealed_size)
    log_matches_seals = not any(f.kind == "seal-root" for f in report.findings)
    if diverged and log_matches_seals:  # only the cache differs from the log
        report.add(Finding("cache", "the leaf cache differs from the event log, which matches "
                           "every seal: the cache was altered (the events verify)"))
    elif diverged:
        if not cache_ok:
            report.add(Finding("cache", "the leaf cache does not match the signed roots either "
                               "(it was altered too): the differences below are relative to "
                               "it and may not name the right positions"))
        for finding in classify(rest_a, rest_b, last_sealed_position):
            report.add(finding)
    elif not cache_ok:
        report.add(Finding("cache", "the leaf cache does not match the signed roots: it was "
                           "altered (the events themselves verify)"))


def _check_roots(frontier: Frontier, seals: Any, report: Report) -> bool:
    ok = True
    root = frontier.root().hex()
    for seal in seals:
        if seal.root != root:
            ok = False
            report.add(Finding("seal-root", f"seal {seal.seal}: the first {seal.tree_size} "
                               "events no longer hash to its signed root", seal=seal.seal))
    return ok


def classify(sealed: list[Leaf], now: list[Leaf], last_sealed_position: int) -> Iterator[Finding]:
    """Name the differences between the sealed leaves and the recomputed ones, in log order.

    Events are told apart by their leaf hash (an event record is unique: its
    originator id and version are part of it). Recomputed events after the last
    sealed position that were never sealed are new, not tampering.
    """
    at_a = {h: i for i, (_, h) in enumerate(sealed)}
    now = [leaf for leaf in now if leaf[0] <= last_sealed_position or leaf[1] in at_a]
    at_b = {h: j for j, (_, h) in enumerate(now)}
    skip_a: set[int] = set()
    skip_b: set[int] = set()
    i = j = 0
    while True:
        while i in skip_a:
            i += 1
        while j in skip_b:
            j += 1
        if i >= len(sealed) and j >= len(now):
            return
        if j >= len(now):
            missing = [p for k, (p, _) in enumerate(sealed[i:], start=i) if k not in skip_a]
            yield Finding("truncated", f"the log is truncated: {len(missing)} sealed events "
                          f"from position {missing[0]} to {missing[-1]} are missing",
                          position=missing[0])
            return
        if i >= len(sealed):
            yield Finding("inserted", f"an event at position {now[j][0]} was inserted "
                          "among sealed events", position=now[j][0])
            j += 1
            continue
        (pa, ha), (pb, hb) = sealed[i], now[j]
        if ha == hb:
            i += 1
            j += 1
        elif ha not in at_b and hb not in at_a:
            yield Finding("changed", f"the event at position {pb} was changed after sealing",
                          position=pb)
            i += 1
            j += 1
        elif ha not in at_b:
            yield Finding("deleted", f"the sealed event at position {pa} was deleted",
                          position=pa)
            i += 1
        elif hb not in at_a:
            yield Finding("inserted", f"an event at position {pb} was inserted among sealed "
                          "events (a past position)", position=pb)
            j += 1
        else:
            k, m = at_a[hb], at_b[ha]
            if k > i and k - i == m - j:  # each now stands where the other was sealed
                yield Finding("swapped", f"the events at positions {pb} and {now[m][0]} were "
                              "swapped", position=pb)
                skip_a.add(k)
                skip_b.add(m)
            else:
                yield Finding("moved", f"the event sealed at position {sealed[k][0]} is now at "
                              f"position {pb}", position=pb)
                skip_a.add(k)
                j += 1
                continue
            i += 1
            j += 1


def verify_and_record(store: SealStore, log: NotificationLog, public_key: Any,
                      from_seal: int | None = None) -> Report:
    """``verify_log``, remembering the last seal found valid (for ``--incremental``)."""
    report = verify_log(store, log, public_key, from_seal)
    if report.ok and report.last_seal is not None:
        store.mark_verified(report.last_seal, datetime.now(UTC))
    return report
