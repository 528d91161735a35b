"""``touchstream kb …``: the knowledge base.

Reads: ``kb search [WORDS] [--tag T] [--language L] [--public]``, ``kb show ID``
(current version, every version, linked cases) and ``kb deflection [--as-of T] [--days N]
[--since T]`` (self-service views whose N-day window closed by ``--as-of`` that did not
lead to a case; table by default, ``--json``, ``--csv``). ``kb status-link --case C
--customer P`` prints a case's signed status link (``/help/cases/…``) to send the
customer. Writes: one subcommand per knowledge command (``kb create-article …``; the same
commands as ``POST /commands/<name>``; flags or JSON on stdin).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from uuid import UUID

from channels.web.knowledge_commands import COMMANDS
from commands.case_links import status_link_for
from projections.knowledge.view import MAX_RESULTS, KnowledgeView
from touchstream.bootstrap import opened
from touchstream.cli.common import (
    add_model_flags,
    model_input,
    open_hub,
    print_json,
    print_recorded,
)
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import read_models, table, when
from touchstream.cli.service import emit, moment

_HEADERS = ("ARTICLE", "STATUS", "VERSION", "PUBLISHED", "VISIBILITY", "LANG", "TAGS", "TITLE")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kb", help="knowledge base: search, show, deflection, article commands")
    ksub = p.add_subparsers(dest="kb_command", metavar="SUBCOMMAND", required=True)
    s = ksub.add_parser("search", help="full-text search (every word as a prefix)")
    s.add_argument("words", nargs="*")
    s.add_argument("--tag")
    s.add_argument("--language")
    s.add_argument("--public", action="store_true", help="only what the public sees")
    s.add_argument("--limit", type=int, default=20)
    _out(s)
    s.set_defaults(func=_search)
    show = ksub.add_parser("show", help="one article: versions and linked cases")
    show.add_argument("article_id")
    show.add_argument("--json", action="store_true", help="one JSON document")
    show.set_defaults(func=_show)
    d = ksub.add_parser("deflection", help="self-service views that did not lead to a case")
    d.add_argument("--as-of", help="RFC 3339 or YYYY-MM-DD (default now)")
    d.add_argument("--days", type=int, default=7, help="N: days a view has to lead to a case")
    d.add_argument("--since", help="count views from here on")
    _out(d)
    d.set_defaults(func=_deflection)
    link = ksub.add_parser("status-link", help="a case's signed status link for the customer")
    link.add_argument("--case", required=True)
    link.add_argument("--customer", required=True)
    link.add_argument("--ttl-days", type=int, default=30)
    link.set_defaults(func=_status_link)
    for name, (model, summary, _) in COMMANDS.items():
        cp = ksub.add_parser(name, help=summary[:1].lower() + summary[1:])
        add_model_flags(cp, model)
        cp.set_defaults(func=_command, model=model)


def _out(p: argparse.ArgumentParser) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")


def _uuid(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError as exc:
        raise CliError(f"{what}: not an id (uuid): {raw!r}") from exc


def _search(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_RESULTS:
        raise CliError(f"--limit must be 1–{MAX_RESULTS}")
    with read_models(quiet=args.json or args.csv) as store:
        items = KnowledgeView(store).search(" ".join(args.words), public=args.public,
                                            language=args.language, tag=args.tag,
                                            limit=args.limit)
    rows = [(a["article_id"], a["status"], a["version"], a["published_version"] or "-",
             a["visibility"], a["language"], ",".join(a["tags"]), a["title"]) for a in items]
    return emit(args, {"items": items}, _HEADERS, rows)


def _show(args: argparse.Namespace) -> int:
    aid = _uuid(args.article_id, "article_id")
    with read_models(quiet=args.json) as store:
        found = KnowledgeView(store).article(str(aid), public=False)
    if found is None:
        raise NotFoundError(f"no article {aid}")
    if args.json:
        print_json(found)
        return Exit.OK
    print(f"{found['title']}  [{found['status']}, version {found['version']}, published "
          f"{found['published_version'] or '-'}, {found['visibility']}, {found['language']}]")
    print("\n".join(table(("VERSION", "AT (UTC)", "BY", "TITLE"), [
        (v["version"], when(v["at"]), v["actor"], v["title"]) for v in found["versions"]])))
    if found["cases"]:
        print()
        print("\n".join(table(("CASE", "CUSTOMER", "RELATION", "AT (UTC)"), [
            (c["case_id"], c["customer_id"], c["relation"], when(c["at"]))
            for c in found["cases"]])))
    shown = found["shown"]
    print()
    print(shown["body"] if shown else "")
    return Exit.OK


def _deflection(args: argparse.Namespace) -> int:
    if not 0 <= args.days <= 365:
        raise CliError("--days must be 0–365")
    as_of = moment(args.as_of)
    since = moment(args.since, "--since") if args.since else None
    with read_models(quiet=args.json or args.csv) as store:
        doc = KnowledgeView(store).deflection(as_of, args.days, since)
    headers = ("ARTICLE", "VIEWS", "LED TO CASE", "DEFLECTED", "CASES RESOLVED", "TITLE")
    rows = [(i["article_id"], i["views"], i["led_to_case"], i["deflected"],
             i["cases_resolved"], i["title"]) for i in doc["articles"]]
    rate = f"{doc['rate']:.1%}" if doc["rate"] is not None else "-"
    lines = table(headers, rows) + [
        "", (f"{doc['views']} views with a closed {doc['days']}-day window as of "
        f"{when(as_of)} UTC: {doc['deflected']} deflected ({rate}), {doc['led_to_case']} led "
        f"to a case; {doc['pending']} still pending")]
    return emit(args, doc, headers, rows, lines)


def _status_link(args: argparse.Namespace) -> int:
    if not 1 <= args.ttl_days <= 365:
        raise CliError("--ttl-days must be 1–365")
    case, customer = _uuid(args.case, "--case"), _uuid(args.customer, "--customer")
    with opened() as deps:
        print(status_link_for(deps.forms.secret, case, customer, datetime.now(UTC),
                              base_url=deps.settings.core.public_base_url or "",
                              ttl_s=args.ttl_days * 86_400))
    return Exit.OK


def _command(args: argparse.Namespace) -> int:
    cmd = args.model(**model_input(args, args.model))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK
