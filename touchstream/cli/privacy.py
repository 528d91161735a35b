"""``touchstream customer erase|export`` and ``touchstream keys rotate-master``."""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
from pathlib import Path
from uuid import UUID

from projections.summary.view import SummaryView
from projections.timeline.view import TimelineView
from touchstream.bootstrap import opened
from touchstream.cli.access import WITHHELD, command_line, record_reads
from touchstream.cli.common import print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import customer_id, read_models
from touchstream.privacy.datakeys import MasterKeyError, _decode_master
from touchstream.privacy.export import export_subject
from touchstream.settings import load as load_settings
from touchstream.wiring import build_data_keys


def register_customer_actions(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = actions.add_parser(
        "erase", help="erase a person's personal data (every record of their merge group)",
        description="Records PersonalDataErased on each record of the person, releases their "
                    "contact points, destroys their data keys and shreds the blobs their events "
                    "name. The log, the counts and every rebuild stay; the personal fields read "
                    "as erased from then on. Erasing twice answers duplicate.")
    p.add_argument("customer")
    p.add_argument("--reason", required=True,
                   help="why: a case or ticket reference (no personal data)")
    p.set_defaults(func=_erase)

    p = actions.add_parser(
        "export", help="everything held about a person, as one zip (subject access request)")
    p.add_argument("customer")
    p.add_argument("--out", type=Path, required=True, help="the zip file to write")
    p.set_defaults(func=_export)


def register_keys_actions(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = actions.add_parser(
        "rotate-master", help="rewrap every data key under a new master key (events untouched)",
        description="Reads the new master key (urlsafe base64 of 32 bytes) from --new-key-file, "
                    "or generates one into <data>/master.key when the current key is that "
                    "file. Set TOUCHSTREAM_MASTER_KEY to the new key afterwards when you "
                    "configure it by environment.")
    p.add_argument("--new-key-file", type=Path,
                   help="file holding the new master key (required when the current one "
                        "comes from TOUCHSTREAM_MASTER_KEY)")
    p.set_defaults(func=_rotate)


def _uuid(raw: str) -> UUID:
    return UUID(customer_id(raw))  # the reading commands' one id parser


def _erase(args: argparse.Namespace) -> int:
    with opened() as deps:
        report = deps.eraser.erase(_uuid(args.customer), args.reason, actor="cli")
    print_json({"customer_id": args.customer, "erased": report.customers,
                "duplicate": report.recorded.duplicate,
                "event_ids": report.recorded.event_ids,
                "blobs_shredded": report.blobs_shredded,
                "held_erased": report.held_erased,
                "quarantine_rows_removed": report.quarantine_rows_removed,
                "calls_forgotten": report.calls_forgotten,
                "mail_quarantine_erased": report.mail_quarantine_erased,
                "mail_ledger_rows_erased": report.mail_ledger_rows_erased})
    return Exit.OK


def _export(args: argparse.Namespace) -> int:
    customer = _uuid(args.customer)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".export-", suffix=".zip")
    try:
        with read_models(quiet=True) as store, opened() as deps, os.fdopen(fd, "wb") as fh:
            manifest = export_subject(deps.hub, SummaryView(store), TimelineView(store),
                                      deps.blobs, customer, fh)
            fh.flush()
            # On record before the zip is moved into place (a file name may be personal).
            record_reads(store, command_line("customer export {customer}", out=WITHHELD),
                         [str(customer)])
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print_json({"customer_id": str(customer), "customers": manifest.customers,
                "out": str(out), "parts": manifest.parts})
    return Exit.OK


def _rotate(args: argparse.Namespace) -> int:
    conf = load_settings()
    keys = build_data_keys(conf)
    if args.new_key_file is not None:
        try:
            new = _decode_master(args.new_key_file.read_text().strip(), str(args.new_key_file))
        except (OSError, MasterKeyError) as exc:
            raise CliError(str(exc)) from exc
        rewrapped = keys.rotate_master(new)
        print_json({"rewrapped": rewrapped, "master_key": str(args.new_key_file)})
        return Exit.OK
    if conf.master_key:
        raise CliError("the master key comes from TOUCHSTREAM_MASTER_KEY: give the new one "
                       "with --new-key-file")
    # The new key is durable before any data key is rewrapped under it: a crash in
    # between leaves master.key.new beside the old file, and the rotation can be rerun
    # with --new-key-file master.key.new.
    new = os.urandom(32)
    path = conf.data_dir / "master.key"
    pending = path.with_suffix(".key.new")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.urlsafe_b64encode(new).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    rewrapped = keys.rotate_master(new)
    os.replace(pending, path)
    print_json({"rewrapped": rewrapped, "master_key": str(path)})
    return Exit.OK
