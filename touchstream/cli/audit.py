"""``touchstream audit``: seal the event log, verify it, and print proofs an outsider can check.

Exit codes: 0 valid; 1 verification found something wrong (each finding names its
seal and log position); 2 bad input; 4 no such seal or event; 5 store unavailable.
The JSON printed by ``prove``, ``consistency`` and ``seals --jsonl`` is what
``replays/audit/standalone_verify.py`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from projections.event_index.view import EventIndexView
from projections.store import ReadStore
from projections.views import ProjectionNotReadyError
from replays.audit import access as access_log
from replays.audit.keys import SealKeyError
from replays.audit.log import find, read_batches, record_json, stored_record
from replays.audit.merkle import leaf_hash
from replays.audit.seals import SealError
from replays.audit.standalone_verify import VerificationError, load_public_key
from replays.audit.verify import Finding, Report, verify_and_record
from touchstream import settings as settings_mod
from touchstream.audit_wiring import Audit, open_audit
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit

EXIT_INVALID = Exit.PROBLEMS  # verify found tampering


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("audit", help="seal the event log, verify it, print proofs",
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    access = argparse.ArgumentParser(add_help=False)
    access.add_argument("--access", action="store_true",
                        help="the read audit's access log instead of the event log")

    p = cmds.add_parser("seal", parents=[access],
                        help="append a signed seal over every event recorded so far")
    p.set_defaults(func=_seal)

    p = cmds.add_parser("seals", parents=[access], help="list the seals (--jsonl: one JSON object per line, "
                                      "for off-site keeping)")
    p.add_argument("--jsonl", action="store_true", help="JSON lines, as the verifier reads them")
    p.add_argument("--from-seal", type=int, default=1, metavar="N")
    p.set_defaults(func=_seals)

    p = cmds.add_parser("public-key", help="print the seal public key (PEM); creates the key "
                                           "pair in the data folder if there is none")
    p.set_defaults(func=_public_key)

    p = cmds.add_parser("verify", parents=[access], help="recompute the tree from the event store and check "
                                       "every seal")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from-seal", type=int, metavar="N",
                       help="start from seal N (read only the events after it)")
    start.add_argument("--incremental", action="store_true",
                       help="start from the last seal a previous verify found valid")
    p.add_argument("--public-key", type=Path, metavar="PEM",
                   help="trust this public key (default: the data folder's key)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_verify)

    p = cmds.add_parser("prove", help="print an inclusion proof of one event against the "
                                      "latest seal")
    p.add_argument("event_id", nargs="?", help="the event's id (as in the timeline)")
    p.add_argument("--position", type=int, help="name the event by its log position instead")
    p.set_defaults(func=_prove)

    p = cmds.add_parser("consistency", parents=[access],
                        help="print a proof that seal B extends seal A")
    p.add_argument("seal_a", type=int)
    p.add_argument("seal_b", type=int)
    p.set_defaults(func=_consistency)

    p = cmds.add_parser("access", help="who read a customer's data (--customer), or what "
                                       "one API key read (--key)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ID", help="reads of this customer's data")
    who.add_argument("--key", metavar="KEY_ID", help="reads made with this API key")
    p.add_argument("--since", help="only reads at or after this time (ISO 8601)")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.set_defaults(func=_access)


def _dump(value: Any) -> None:
    print(json.dumps(value, sort_keys=True))


def _audit(args: argparse.Namespace | None = None) -> Any:
    return open_audit(settings_mod.load(), access=bool(getattr(args, "access", False)))


def _guard(action: Any) -> int:
    try:
        return int(action())
    except SealError as exc:
        print(f"touchstream: {exc}", file=sys.stderr)
        return Exit.NOT_FOUND
    except SealKeyError as exc:
        raise CliError(str(exc)) from exc


def _seal(args: argparse.Namespace) -> int:
    def run() -> int:
        with _audit(args) as audit:
            _dump(audit.seal().to_json())
        return Exit.OK
    return _guard(run)


def _seals(args: argparse.Namespace) -> int:
    with _audit(args) as audit:
        seals = audit.seals.seals(args.from_seal)
    for seal in seals:
        if args.jsonl:
            _dump(seal.to_json())
        else:
            print(f"seal {seal.seal:>6}  {seal.sealed_at}  {seal.tree_size:>10} events  "
                  f"root {seal.root}")
    return Exit.OK


def _public_key(args: argparse.Namespace) -> int:
    def run() -> int:
        with _audit() as audit:
            print(audit.key(create=True).public_pem(), end="")
        return Exit.OK
    return _guard(run)


def _trusted_key(audit: Audit, path: Path | None) -> Any:
    if path is None:
        return audit.key().public_key
    try:
        return load_public_key(path.read_bytes())
    except (OSError, ValueError, VerificationError) as exc:
        raise CliError(f"cannot use the public key {path}: {exc}") from exc


def _verify(args: argparse.Namespace) -> int:
    def run() -> int:
        with _audit(args) as audit:
            key = _trusted_key(audit, args.public_key)
            from_seal = args.from_seal
            if args.incremental:
                from_seal = audit.seals.last_verified()
            try:
                report = verify_and_record(audit.seals, audit.log, key, from_seal)
            except VerificationError as exc:
                raise SealError(str(exc)) from exc
            if args.access:  # the chain too: it also covers records not sealed yet
                for problem in access_log.verify_chain(audit.db):
                    report.add(Finding("chain", problem))
        _print_report(report, args.json)
        return Exit.OK if report.ok else EXIT_INVALID
    return _guard(run)


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        _dump(report.to_json())
        return
    span = ("no seals" if report.first_seal is None
            else f"seals {report.first_seal}..{report.last_seal}")
    verdict = "VALID" if report.ok else "INVALID"
    print(f"{verdict}: {span}; {report.events_read} events read; the log holds "
          f"{report.tree_size} events, {report.unsealed} not sealed yet")
    for finding in report.findings:
        print(f"  {finding.kind}: {finding.detail}")


def _prove(args: argparse.Namespace) -> int:
    def run() -> int:
        with _audit() as audit:
            position = args.position if args.position is not None else _locate(audit, args)
            _dump(prove(audit, position))
        return Exit.OK
    return _guard(run)


def prove(audit: Audit, position: int) -> dict[str, Any]:
    """The inclusion proof document of the event at ``position`` against the latest seal.

    O(log n) reads: the leaf index by a binary search of the leaf cache, the path from
    stored subtree roots (``SealStore.tree``), and the one event record."""
    seal = audit.seals.latest()
    if seal is None:
        raise SealError("no seal yet: run 'touchstream audit seal'")
    index = audit.seals.leaf_index(position, seal.tree_size)
    if index is None:
        raise SealError(f"the event at position {position} is not sealed yet")
    record = find(audit.log, position)
    if record is None:
        raise SealError(f"no event at position {position} in the event store")
    proof = audit.seals.tree().inclusion(index, seal.tree_size)
    return {"seal": seal.to_json(), "record": record_json(record), "leaf_index": index,
            "tree_size": seal.tree_size, "leaf_hash": leaf_hash(stored_record(record)).hex(),
            "proof": [h.hex() for h in proof]}


def _locate(audit: Audit, args: argparse.Namespace) -> int:
    """The log position of the event with this id.

    The event index read model (``event_index``) maps every event's id to its
    position: one primary-key read. It is a hint, so the one record there is decoded
    and its id compared. Only events the index has not applied yet (it runs behind
    the log by a batch or so, or was never built) are looked for by decoding the log
    from where the index stands; ``--position`` skips the lookup."""
    if not args.event_id:
        raise CliError("name the event: EVENT_ID or --position N")
    try:
        wanted = UUID(args.event_id)
    except ValueError as exc:
        raise CliError(f"not an event id: {args.event_id!r}") from exc
    mapper = audit.hub.mapper

    def is_wanted(notification: Any) -> bool:
        try:
            event = mapper.to_domain_event(notification)
        except Exception:  # noqa: BLE001 — an erased or foreign event is not the one
            return False
        return getattr(event, "event_id", None) == wanted

    hint, covered = _indexed_position(audit, str(wanted))
    if hint is not None:
        found = find(audit.log, hint)
        if found is not None and is_wanted(found):
            return hint
    for batch in read_batches(audit.log, covered or None):
        for n in batch:
            if is_wanted(n):
                return int(n.id)
    raise SealError(f"no event {wanted} in the log")


def _indexed_position(audit: Audit, event_id: str) -> tuple[int | None, int]:
    """The event index's position for ``event_id`` (None if not indexed), and the log
    position the index covers (0 when it was never built: the whole log is scanned)."""
    view = EventIndexView(ReadStore(audit.settings.read_store,
                                    timeout_s=audit.settings.store_timeout_s))
    try:
        return view.position_of(event_id), view.position()
    except ProjectionNotReadyError:
        return None, 0


def _consistency(args: argparse.Namespace) -> int:
    def run() -> int:
        with _audit(args) as audit:
            _dump(consistency(audit, args.seal_a, args.seal_b))
        return Exit.OK
    return _guard(run)


def consistency(audit: Audit, a: int, b: int) -> dict[str, Any]:
    """The consistency proof document between seals ``a`` and ``b`` (a before b)."""
    first, second = audit.seals.get(a), audit.seals.get(b)
    if first.seal > second.seal:
        raise CliError("SEAL_A must be the earlier seal")
    if first.tree_size == 0:
        raise CliError(f"seal {a} covers no events: there is nothing to prove consistent")
    proof = audit.seals.tree().consistency(first.tree_size, second.tree_size)
    return {"first": first.to_json(), "second": second.to_json(),
            "proof": [h.hex() for h in proof]}


def _access(args: argparse.Namespace) -> int:
    if args.customer is not None:
        try:
            UUID(args.customer)
        except ValueError as exc:
            raise CliError(f"not a customer id: {args.customer!r}") from exc
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise CliError(f"--since is not an ISO 8601 time: {args.since!r}") from exc
        if since.tzinfo is None:
            raise CliError("--since needs a timezone (e.g. 2026-01-31T00:00:00+00:00)")
    with _audit(argparse.Namespace(access=True)) as audit:
        found = access_log.records(
            audit.db, customer_id=str(UUID(args.customer)) if args.customer else None,
            key_id=args.key, since=since.astimezone(UTC).isoformat() if since else None,
            limit=args.limit)
    for rec in found:
        if args.json:
            _dump(rec.to_json())
        else:
            e = rec.entry
            print(f"{e.at}  {e.role:<10} key {e.key_id}  {e.route}  customer {e.customer_id}  "
                  f"from {e.client or '-'}  request {e.request_id}")
    return Exit.OK
