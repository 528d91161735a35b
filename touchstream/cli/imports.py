"""``touchstream import cdr FILE [--follow]`` and ``touchstream import visits FILE``."""

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
from channels.phone.cdr_tail import CdrTailer, CheckpointFile, Quarantine
from commands import messages as m
from commands.bulk import BulkImporter
from commands.hub import CommandError
from domain.errors import DomainError
from touchstream.bootstrap import Dependencies, opened
from touchstream.cli.common import open_hub, print_json
from touchstream.cli.errors import CliError, describe_validation
from touchstream.settings import zone

EXIT_QUARANTINED = 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("import", help="import call records or offline visits from files")
    kinds = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)

    p = kinds.add_parser(
        "cdr", help="Asterisk cdr_csv Master.csv",
        description="Record each row of an Asterisk cdr_csv file as a call. Resumes from a "
                    "durable (inode, offset) checkpoint; unreadable rows are quarantined and "
                    "reported; exits 1 when any row was quarantined.")
    p.add_argument("file", type=Path)
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


def _cdr(args: argparse.Namespace) -> int:
    with opened() as deps:
        return _import_cdr(args, deps)


def _import_cdr(args: argparse.Namespace, deps: Dependencies) -> int:
    conf = deps.settings
    options = CdrOptions(timezone=zone(args.timezone or conf.cdr.timezone),
                         direction=args.direction,
                         internal_max_digits=args.internal_max_digits)
    path: Path = args.file.resolve()
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    checkpoint = args.checkpoint or conf.data_dir / "checkpoints" / f"cdr-{tag}.json"
    quarantine = conf.data_dir / "quarantine" / "cdr.jsonl"
    if not args.follow and not path.exists():
        raise CliError(f"no such file: {args.file}")
    tailer = CdrTailer(path, BulkImporter(deps.hub).import_history, CheckpointFile(checkpoint),
                       Quarantine(quarantine),
                       options, report=lambda msg: print(f"touchstream: {msg}",
                                                         file=sys.stderr))
    if args.follow:
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        stats = tailer.follow(stop.is_set, poll_s=args.poll)
    else:
        stats = tailer.run_once()
    summary = {k: v for k, v in asdict(stats).items() if k != "problems"}
    print_json({**summary, "quarantine": str(quarantine) if stats.problems else None})
    return EXIT_QUARANTINED if stats.malformed or stats.rejected else 0


def _visits(args: argparse.Namespace) -> int:
    recorded = duplicates = failed = 0
    source = contextlib.nullcontext(sys.stdin) if args.file == "-" else _open(args.file)
    with source as stream, open_hub() as hub:
        for number, line in enumerate(stream, start=1):
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
    return EXIT_QUARANTINED if failed else 0


def _open(name: str):  # type: ignore[no-untyped-def]
    try:
        return open(name, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}") from exc
