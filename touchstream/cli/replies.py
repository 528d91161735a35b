"""``touchstream templates …``, ``touchstream territories …``, ``touchstream material …``
and ``touchstream auto-replies``: message templates, sales territories, the document
library and the automatic acknowledgements.

``templates show NAME`` lists a template's versions; ``templates preview NAME --customer
ID [--var K=V] [--language L] [--case ID]`` renders it against a customer's data without
sending (a read of that customer, recorded in the read audit); ``templates save-template``
adds a version. ``territories`` lists each territory with owner, open opportunities and
pipeline (table, ``--json``, ``--csv``); ``territories reassign-territory --territory T
--to-owner O`` records the reassignment and runs one pass of the territory policy, so its
open opportunities follow at once. ``material add FILE`` puts a document in the library
(prints its id); ``material send-material …`` sends one by email or fax.
``email queue --template NAME --var K=V`` is the templated staff reply.
"""

from __future__ import annotations

import argparse
import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from channels.web.replies_commands import COMMANDS
from commands import replies as rc
from domain.replies import template_id
from projections.auto_replies.view import AutoRepliesView
from projections.territories.view import TerritoriesView
from touchstream import settings as settings_mod
from touchstream.bootstrap import opened
from touchstream.cli.access import command_line, record_reads
from touchstream.cli.common import (
    add_model_flags,
    model_input,
    open_hub,
    print_json,
    print_recorded,
)
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import read_models
from touchstream.cli.service import emit

MAX_MATERIAL_BYTES = 20 * 1024 * 1024


def template_ref(raw: str) -> UUID:
    """A template named by id or name."""
    try:
        return UUID(raw)
    except ValueError:
        return template_id(raw)


def variables(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--var wants KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def _commands(sub: argparse._SubParsersAction, names: tuple[str, ...]) -> None:  # type: ignore[type-arg]
    for name in names:
        model, summary, _ = COMMANDS[name]
        cp = sub.add_parser(name, help=summary[:1].lower() + summary[1:])
        add_model_flags(cp, model)
        cp.set_defaults(func=_command, model=model)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = sub.add_parser("templates", help="message templates: show, preview, save a version")
    tsub = t.add_subparsers(dest="templates_command", metavar="SUBCOMMAND", required=True)
    show = tsub.add_parser("show", help="a template's versions per language")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="one JSON document")
    show.set_defaults(func=_show)
    pv = tsub.add_parser("preview", help="render a template against a customer's data "
                                         "(nothing is sent)")
    pv.add_argument("name")
    pv.add_argument("--customer", required=True, help="customer id")
    pv.add_argument("--var", action="append", default=[], metavar="KEY=VALUE")
    pv.add_argument("--language")
    pv.add_argument("--case", help="case id the template may name")
    pv.add_argument("--json", action="store_true", help="one JSON document")
    pv.set_defaults(func=_preview)
    _commands(tsub, ("save-template",))

    tr = sub.add_parser("territories", help="sales territories: owner, open opportunities, "
                                            "pipeline; reassign one")
    trsub = tr.add_subparsers(dest="territories_command", metavar="SUBCOMMAND")
    out = tr.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")
    tr.set_defaults(func=_territories)
    _commands(trsub, ("reassign-territory",))

    mat = sub.add_parser("material", help="the document library: add a document, send one")
    msub = mat.add_subparsers(dest="material_command", metavar="SUBCOMMAND", required=True)
    add = msub.add_parser("add", help="put a document in the library; prints its id")
    add.add_argument("file", type=Path)
    add.set_defaults(func=_add_material)
    _commands(msub, ("send-material",))

    ar = sub.add_parser("auto-replies", help="new cases' automatic acknowledgements, newest "
                                             "first")
    ar.add_argument("--limit", type=int, default=50)
    out = ar.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")
    ar.set_defaults(func=_auto_replies)


def _command(args: argparse.Namespace) -> int:
    cmd = args.model(**model_input(args, args.model))
    with opened() as deps:
        print_recorded(deps.hub.execute(cmd))
        if args.model.__name__ == "ReassignTerritory":
            from touchstream.territory_moves import TerritoryMoves

            moved, refused = TerritoryMoves(deps).run_once(datetime.now(UTC))
            print(f"{moved} open opportunit{'y' if moved == 1 else 'ies'} moved")
            for line in refused:
                print(f"refused: {line}")
    return Exit.OK


def _show(args: argparse.Namespace) -> int:
    with open_hub() as hub:
        found = rc.template(hub, args.name)
        doc = {"template_id": str(found.id), "name": found.name,
               "channel": found.template_channel, "fallback_language": found.fallback_language,
               "latest": found.latest, "versions": found.versions}
    if args.json:
        print_json(doc)
        return Exit.OK
    print(f"{found.name} ({found.template_channel}, fallback {found.fallback_language}, "
          f"id {found.id})")
    for lang, versions in sorted(found.versions.items()):
        for v in versions:
            print(f"  {lang} v{v['version']}: {v['subject']}")
    return Exit.OK


def _preview(args: argparse.Namespace) -> int:
    try:
        customer = UUID(args.customer)
    except ValueError as exc:
        raise CliError(f"--customer: not a uuid: {args.customer!r}") from exc
    with opened() as deps:
        record_reads(deps.read_store, command_line("templates preview", name=args.name),
                     [str(customer)])
        doc = rc.preview(deps.hub, args.name, customer, variables=variables(args.var),
                         language=args.language, case_id=args.case)
    if args.json:
        print_json(doc)
    else:
        print(f"[{doc['name']} {doc['language']} v{doc['version']}]")
        print(f"Subject: {doc['subject']}\n\n{doc['body_text']}")
    return Exit.OK


def _territories(args: argparse.Namespace) -> int:
    defs = settings_mod.load().work.policy().territories
    with read_models(quiet=args.json or args.csv) as store:
        items = TerritoriesView(store).territories(defs)
    headers = ("TERRITORY", "OWNER", "OPEN", "PIPELINE", "PREFIXES")
    rows = [(i["territory"], i["owner"], i["open_opportunities"],
             " ".join(f"{v} {c}" for c, v in i["pipeline"].items()) or "-",
             " ".join(i["prefixes"])) for i in items]
    return emit(args, {"items": items}, headers, rows)


def _auto_replies(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        raise CliError("--limit must be 1–500")
    with read_models(quiet=args.json or args.csv) as store:
        items = AutoRepliesView(store).outcomes(args.limit)
    headers = ("OPENED (UTC)", "CASE", "CHANNEL", "OUTCOME")
    rows: list[tuple[Any, ...]] = [(i["opened_at"], i["case_id"], i["channel"], i["outcome"])
                                   for i in items]
    return emit(args, {"items": items}, headers, rows)


def _add_material(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from exc
    if not data or len(data) > MAX_MATERIAL_BYTES:
        raise CliError(f"a document is 1 byte to {MAX_MATERIAL_BYTES} bytes")
    with opened() as deps:
        address = deps.blobs.put(data)
    content_type = mimetypes.guess_type(args.file.name)[0] or "application/octet-stream"
    print_json({"material_id": address, "name": args.file.name, "size": len(data),
                "content_type": content_type})
    return Exit.OK
