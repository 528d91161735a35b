"""``touchstream import cdr FILE [--follow]``, ``… visits FILE`` and ``… orders FILE``."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from channels.phone.cdr import CdrOptions
from channels.phone.cdr_tail import (
    CdrTailer,
    CheckpointFile,
    ImportStats,
    Quarantine,
    RecordBatch,
    retry_quarantined,
)
from commands import messages as m
from commands.bulk import BulkImporter, ImportResult
from commands.hub import CommandError
from domain.errors import DomainError
from replays.progress import ProgressBar
from touchstream.bootstrap import Dependencies, opened
from touchstream.cli import import_orders
from touchstream.cli.common import ending, open_hub, print_json
from touchstream.cli.errors import CliError, describe_validation
from touchstream.cli.exits import Exit
from touchstream.settings import Settings, zone


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("import", help="import call records, offline visits or ERP orders from files")
    kinds = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)

    p = kinds.add_parser(
        "cdr", help="Asterisk cdr_csv Master.csv",
        description="Record each row of an Asterisk cdr_csv file as a call. Resumes from a "
                    "durable (inode, offset) checkpoint; unreadable rows are quarantined and "
                    "reported; exits 1 when any row was quarantined. --retry-quarantined "
                    "records the quarantined rows again first (FILE may then be omitted) and "
                    "exits 1 while any row is still waiting in quarantine.")
    p.add_argument("file", type=Path, nargs="?")
    p.add_argument("--retry-quarantined", action="store_true",
                   help="record the rows waiting in quarantine again (those refused for a "
                        "reason since gone away); rows refused again stay")
    p.add_argument("--follow", action="store_true", help="keep reading as the PBX appends")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between reads with --follow")
    p.add_argument("--timezone", help="IANA zone of the CSV's local times "
                                      "(default TOUCHSTREAM_CDR_TIMEZONE or UTC)")
    p.add_argument("--direction", choices=["auto", "inbound", "outbound"], default="auto",
                   help="auto: outbound when src is an extension and dst is not")
    p.add_argument("--internal-max-digits", type=int, default=5,
                   help="numbers with at most this many digits are extensions (auto direction)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint file (default under the data dir)")
    p.set_defaults(func=_cdr)

    p = kinds.add_parser(
        "visits", help="visits recorded offline, one JSON object per line",
        description="Sync visits entered offline: each line is a `record visit` JSON object "
                    "with its real occurred_at. Lines already synced are skipped.")
    p.add_argument("file", help="JSON lines file, or - for stdin")
    p.set_defaults(func=_visits)

    import_orders.register(kinds)


def _cdr(args: argparse.Namespace) -> int:
    with opened() as deps:
        return _import_cdr(args, deps)


def _import_cdr(args: argparse.Namespace, deps: Dependencies) -> int:
    conf = deps.settings
    options = CdrOptions(timezone=zone(args.timezone or conf.cdr.timezone),
                         direction=args.direction,
                         internal_max_digits=args.internal_max_digits)
    quarantine = deps.cdr_quarantine
    if args.file is None and not args.retry_quarantined:
        raise CliError("give the CDR file to import, or --retry-quarantined")
    if args.file is not None and not args.follow and not args.file.exists():
        raise CliError(f"no such file: {args.file}")
    retried: dict[str, int] | None = None
    stats = None
    bar = ProgressBar.on_terminal("import cdr", unit="rows")
    with ending(bar):
        record = _counted(BulkImporter(deps.hub).import_history, bar)
        if args.retry_quarantined:
            retry = retry_quarantined(quarantine, record, options)
            retried = {k: v for k, v in asdict(retry).items() if k != "waiting"}
        if args.file is not None:
            stats = _tail(args, conf, record, quarantine, options)
    summary: dict[str, object] = {}
    if stats is not None:
        summary.update({k: v for k, v in asdict(stats).items() if k != "problems"})
    if retried is not None:
        summary["retry"] = retried
    waiting = quarantine.waiting()
    summary.update({"waiting_in_quarantine": waiting,
                    "quarantine": str(quarantine.path) if waiting else None})
    print_json(summary)
    if stats is not None and (stats.malformed or stats.rejected):
        return Exit.PROBLEMS
    return Exit.PROBLEMS if retried is not None and waiting else Exit.OK


def _tail(args: argparse.Namespace, conf: Settings, record: RecordBatch,
          quarantine: Quarantine, options: CdrOptions) -> ImportStats:
    path: Path = args.file.resolve()
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    checkpoint = args.checkpoint or conf.data_dir / "checkpoints" / f"cdr-{tag}.json"
    tailer = CdrTailer(path, record, CheckpointFile(checkpoint), quarantine, options,
                       report=_report)
    if not args.follow:
        return tailer.run_once()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return tailer.follow(stop.is_set, poll_s=args.poll)


def _report(message: str) -> None:
    print(f"touchstream: {message}", file=sys.stderr)


def _visits(args: argparse.Namespace) -> int:
    recorded = duplicates = failed = 0
    source = contextlib.nullcontext(sys.stdin) if args.file == "-" else _open(args.file)
    bar = ProgressBar.on_terminal("import visits", unit="lines")
    with source as stream, open_hub() as hub, ending(bar):
        for number, line in enumerate(stream, start=1):
            bar(number)
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise CliError("a line must hold one JSON object")
                result = hub.execute(m.RecordVisit.model_validate({"actor": "offline-sync",
                                                                    **data}))
            except ValidationError as exc:
                failed += 1
                print(f"touchstream: line {number}: {describe_validation(exc)}", file=sys.stderr)
                continue
            except (ValueError, CliError, DomainError, CommandError) as exc:
                failed += 1
                print(f"touchstream: line {number}: {exc}", file=sys.stderr)
                continue
            if result.duplicate:
                duplicates += 1
            else:
                recorded += 1
    print_json({"recorded": recorded, "duplicates": duplicates, "failed": failed})
    return Exit.PROBLEMS if failed else Exit.OK


def _counted(importer: RecordBatch, bar: ProgressBar) -> RecordBatch:
    """``importer``, counting the rows it was given on ``bar``."""
    rows = 0

    def counted(commands: list[m.LogCall]) -> list[ImportResult]:
        nonlocal rows
        results = importer(commands)
        rows += len(results)
        bar(rows)
        return results

    return counted


def _open(name: str):  # type: ignore[no-untyped-def]
    try:
        return open(name, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}") from exc
