"""``touchstream service …``: the service queue, a case, statistics, and every case command.

Reads: ``queue``, ``case CASE``, ``stats --from --to``, ``contracts CUSTOMER`` (contracts
and installed base, merges followed, in force ``--as-of`` a day) (table by default, ``--json``,
``--csv``); SLA states are judged ``--as-of`` a moment (default now) with the SLA settings
in force. Writes: ``service open-case --customer-id … --case-id …`` and one subcommand per
transition (the same commands as ``POST /commands/<name>``; flags or JSON on stdin).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from channels.web.service_commands import COMMANDS
from channels.web.survey import survey_link
from projections.contracts.view import ContractsView
from projections.service.view import ServiceView
from projections.summary.view import SummaryView
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
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import customer_id, existing, read_models, table, when


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("service", help="service cases: queue, case, statistics, transitions")
    ssub = p.add_subparsers(dest="service_command", metavar="SUBCOMMAND", required=True)
    q = ssub.add_parser("queue", help="open cases by SLA state and next deadline; workload")
    q.add_argument("--queue")
    q.add_argument("--agent")
    q.add_argument("--priority", choices=("urgent", "high", "normal", "low"))
    q.add_argument("--limit", type=int, default=50)
    _read_flags(q)
    q.set_defaults(func=_queue)
    c = ssub.add_parser("case", help="a case: every step in order, SLA timers")
    c.add_argument("case", help="case id")
    _read_flags(c)
    c.set_defaults(func=_case)
    s = ssub.add_parser("stats", help="service figures per day, week or month")
    s.add_argument("--from", dest="start", required=True, help="RFC 3339 or YYYY-MM-DD (UTC)")
    s.add_argument("--to", dest="end", required=True, help="RFC 3339 or YYYY-MM-DD (UTC)")
    s.add_argument("--period", choices=("day", "week", "month"), default="week")
    _read_flags(s)
    s.set_defaults(func=_stats)
    k = ssub.add_parser("contracts", help="a customer's service contracts and installed base")
    k.add_argument("customer", help="customer id (a merged-away id reads its survivor)")
    _read_flags(k)
    k.set_defaults(func=_contracts)
    link = ssub.add_parser("survey-link", help="the signed CSAT survey path of a case")
    link.add_argument("--customer-id", required=True)
    link.add_argument("--case-id", required=True)
    link.set_defaults(func=_survey_link)
    for name, (model, summary, _) in COMMANDS.items():
        cp = ssub.add_parser(name, help=summary[:1].lower() + summary[1:])
        add_model_flags(cp, model)
        cp.set_defaults(func=_command, model=model)


def _read_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", help="judge SLA states at this moment (RFC 3339; default now)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")


def moment(raw: str | None, what: str = "--as-of") -> datetime:
    """An aware moment from RFC 3339 or a date (UTC midnight); now when None."""
    if raw is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise CliError(f"{what}: not a date or time: {raw!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _view(store: Any) -> ServiceView:
    return ServiceView(store, settings_mod.load().service.sla)


def emit(args: argparse.Namespace, doc: Any, headers: Sequence[str],
         rows: Sequence[Sequence[object]], lines: list[str] | None = None) -> int:
    if args.json:
        print_json(doc)
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(headers)
        writer.writerows(rows)
    else:
        print("\n".join(lines if lines is not None else table(headers, rows)))
    return Exit.OK


def _queue(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be 1–1000")
    as_of = moment(args.as_of)
    with read_models(quiet=args.json or args.csv) as store:
        doc = _view(store).queue(as_of, queue=args.queue, agent=args.agent,
                                 priority=args.priority, limit=args.limit)
    headers = ("CASE", "QUEUE", "AGENT", "PRIORITY", "STATE", "NEXT DEADLINE", "AGE MIN",
               "STATUS")
    rows = [(i["case_id"], i["queue"], i["agent"], i["priority"], i["sla_state"],
             when(i["next_deadline"]) if i["next_deadline"] else None, i["age_min"],
             i["status"]) for i in doc["items"]]
    lines = table(headers, rows) + ["", f"{doc['total']} open as of {when(as_of)} UTC", ""]
    lines += table(("AGENT", "OPEN", "AT RISK", "BREACHED"),
                   [(w["agent"], w["open"], w["at_risk"], w["breached"])
                    for w in doc["workload"]])
    return emit(args, doc, headers, rows, lines)


def _case(args: argparse.Namespace) -> int:
    try:
        case_id = str(UUID(args.case))
    except ValueError as exc:
        raise CliError(f"not a case id: {args.case!r}") from exc
    as_of = moment(args.as_of)
    with read_models(quiet=args.json or args.csv) as store:
        doc = _view(store).case(case_id, as_of)
        if doc is None:
            raise NotFoundError(f"no case {case_id}")
        record_reads(store, command_line("service case {case}", as_of=args.as_of),
                     [doc["customer_id"]])
    headers = ("AT (UTC)", "STEP", "CLOCK", "ACTOR", "TOUCHPOINT")
    rows = [(when(s["occurred_at"]), s["kind"], s["clock"], s["actor"],
             s["touchpoint_event_id"]) for s in doc["steps"]]
    lines = [(f"{doc['subject'] or '-'}  ({doc['case_kind']}, {doc['category']}, "
             f"{doc['priority']}, {doc['status']}, SLA {doc['sla_state']})"), ""]
    lines += table(("TIMER", "TARGET MIN", "DUE (UTC)", "MET (UTC)", "USED MIN", "STATE"),
                   [(t["name"], t["target_min"], when(t["due_at"]), when(t["met_at"]),
                     t["used_min"], t["state"]) for t in doc["timers"]])
    lines += [""] + table(headers, rows)
    return emit(args, doc, headers, rows, lines)


def _stats(args: argparse.Namespace) -> int:
    start, end = moment(args.start, "--from"), moment(args.end, "--to")
    as_of = moment(args.as_of)
    with read_models(quiet=args.json or args.csv) as store:
        doc = _view(store).statistics(start, end, args.period, as_of)
    headers = ("PERIOD", "CASES", "FRT MEDIAN", "FRT P90", "RT MEDIAN", "RT P90", "FCR",
               "BREACH", "REOPEN", "CSAT", "COMPLAINTS")
    rows = [(b["period"], b["cases"], b["first_response_min"]["median"],
             b["first_response_min"]["p90"], b["resolution_min"]["median"],
             b["resolution_min"]["p90"], b["fcr_rate"], b["breach_rate"], b["reopen_rate"],
             b["csat"]["average"], sum(b["complaints_by_cause"].values()))
            for b in doc["items"]]
    return emit(args, doc, headers, rows)


def _contracts(args: argparse.Namespace) -> int:
    day = moment(args.as_of).date()
    asked = customer_id(args.customer)
    with read_models(quiet=args.json or args.csv) as store:
        root = existing(SummaryView(store).resolve(asked), asked).root
        doc = ContractsView(store).of_customer(root, day)
    headers = ("KIND", "ID", "CODE / SLA", "SERIAL / PERIOD", "STATE", "COVERED BY")
    rows = [("contract", c["contract_id"], c["sla_policy"],
             f"{c['starts_on']}..{c['ends_on']}", c["state"], None) for c in doc["contracts"]]
    rows += [("product", p["product_id"], p["product_code"], p["serial_number"],
              "installed" if p["installed"] else "removed", " ".join(p["covered_by"]) or None)
             for p in doc["products"]]
    lines = table(headers, rows) + ["", (f"{doc['active_contracts']} contract(s) in force, "
                                    f"{doc['installed_products']} product(s) installed on {day}")]
    return emit(args, doc, headers, rows, lines)


def _command(args: argparse.Namespace) -> int:
    cmd = args.model(**model_input(args, args.model))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _survey_link(args: argparse.Namespace) -> int:
    try:
        customer_id, case_id = UUID(args.customer_id), UUID(args.case_id)
    except ValueError as exc:
        raise CliError("--customer-id and --case-id are uuids") from exc
    with opened() as deps:
        print(survey_link(deps.forms.secret, customer_id, case_id))
    return Exit.OK
