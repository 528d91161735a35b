"""``touchstream marketing …``: campaigns and their figures, drill-downs, segments, consent
totals (table by default, ``--json``, ``--csv``), and marketing's commands.

Reads come from the read models, caught up to the log head first (like
``timeline``); no per-customer data is shown, so nothing needs the read audit.
Commands take the same fields as their HTTP routes (flags, or ``--json`` on
stdin); ``send`` queues a campaign's email to its target segment with signed
unsubscribe links (``TOUCHSTREAM_PUBLIC_BASE_URL`` must be set). Exit codes as
everywhere (README, Exit codes): 2 bad input, 3 refused by a rule, 4 not found.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from channels.web import marketing_commands
from channels.web.marketing import MarketingLinks
from projections.campaigns.view import METRICS, CampaignsView
from projections.consent.view import ConsentView
from projections.segments.view import SegmentsView
from projections.store import ReadStore
from touchstream.bootstrap import opened
from touchstream.cli.common import add_model_flags, model_input, open_hub, print_recorded
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import read_models, table
from touchstream.marketing_routes import SendCampaignIn, send_campaign
from touchstream.settings import load as load_settings

_PERFORMANCE = ("name", "state", "queued", "sent", "delivered", "bounced", "suppressed",
                "unsubscribed", "responses", "cost_per_response", "opportunities_attributed",
                "orders_attributed", "revenue_attributed", "roi", "first_touch_orders",
                "first_touch_revenue", "campaign_id")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("marketing", help="campaigns, segments, consent: figures and commands")
    msub = p.add_subparsers(dest="marketing_command", metavar="ACTION", required=True)

    def reading(name: str, help_: str) -> argparse.ArgumentParser:
        r = msub.add_parser(name, help=help_)
        out = r.add_mutually_exclusive_group()
        out.add_argument("--json", action="store_true", help="print JSON")
        out.add_argument("--csv", action="store_true", help="print CSV with a header row")
        r.add_argument("--quiet", action="store_true", help="no progress bar")
        return r

    reading("campaigns", "every campaign with its figures").set_defaults(func=_campaigns)
    one = reading("campaign", "one campaign's figures")
    one.add_argument("campaign_id")
    one.set_defaults(func=_campaign)
    ev = reading("events", "the events behind one figure of a campaign")
    ev.add_argument("campaign_id")
    ev.add_argument("metric", choices=METRICS)
    ev.add_argument("--limit", type=int, default=100, help="at most this many (1–500)")
    ev.add_argument("--after", help="the last event id of the previous page")
    ev.set_defaults(func=_events)
    seg = reading("segments", "segments with their member counts on a day")
    seg.add_argument("--as-of", type=_date, help="YYYY-MM-DD (default today, UTC)")
    seg.set_defaults(func=_segments)
    mem = reading("members", "a segment's members on a day")
    mem.add_argument("segment_id")
    mem.add_argument("--as-of", type=_date, help="YYYY-MM-DD (default today, UTC)")
    mem.set_defaults(func=_members)
    con = reading("consent", "consent totals per channel and purpose on a day")
    con.add_argument("--as-of", type=_date, help="YYYY-MM-DD (default today, UTC)")
    con.set_defaults(func=_consent)

    for name, (model, summary, _) in marketing_commands.COMMANDS.items():
        c = msub.add_parser(name, help=summary.lower())
        add_model_flags(c, model)
        c.set_defaults(func=_command, model=model)
    send = msub.add_parser("send", help="queue a campaign's email to its target segment")
    send.add_argument("campaign_id")
    send.add_argument("--from", dest="from_address", required=True)
    send.add_argument("--subject", default="", help="the subject (overrides a template's)")
    send.add_argument("--body-file", type=argparse.FileType("r", encoding="utf-8"),
                      help="the email's text ('-': stdin); or --template")
    send.add_argument("--template", help="render this message template (name or id), in each "
                                         "member's language, instead of --body-file")
    send.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                      help="a template variable (repeatable)")
    send.set_defaults(func=_send)


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {raw!r}") from exc


def _day(as_of: date | None) -> datetime:
    return datetime.combine(as_of or datetime.now(UTC).date(), time.max, tzinfo=UTC)


def _uuid(raw: str, what: str) -> str:
    try:
        return str(UUID(raw))
    except ValueError as exc:
        raise CliError(f"not a {what} id: {raw!r}") from exc


def emit(args: argparse.Namespace, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Rows as a table, ``--json`` (a list of objects) or ``--csv`` (header row first)."""
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, sort_keys=True))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
    else:
        for line in table([c.upper().replace("_", " ") for c in columns],
                          [[_cell(row.get(c)) for c in columns] for row in rows]):
            print(line)


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return value


def _campaigns(args: argparse.Namespace) -> int:
    with read_models(quiet=args.quiet) as store:
        view = CampaignsView(store)
        rows, after = [], None
        while batch := view.campaigns(500, after):
            rows += [view.performance(c["campaign_id"]) for c in batch]
            after = batch[-1]["campaign_id"]
    emit(args, _PERFORMANCE, sorted(rows, key=lambda r: (r["name"], r["campaign_id"])))
    return Exit.OK


def _campaign(args: argparse.Namespace) -> int:
    campaign = _uuid(args.campaign_id, "campaign")
    with read_models(quiet=args.quiet) as store:
        found = CampaignsView(store).performance(campaign)
    if found is None:
        raise NotFoundError(f"no campaign {campaign}")
    emit(args, (*_PERFORMANCE, "responses_by_channel", "first_touch_responses",
                "last_touch_responses", "first_touch_opportunities", "first_touch_roi",
                "budget", "currency", "roi_note"), [found])
    return Exit.OK


def _events(args: argparse.Namespace) -> int:
    campaign = _uuid(args.campaign_id, "campaign")
    if not 1 <= args.limit <= 500:
        raise CliError("--limit must be 1–500")
    with read_models(quiet=args.quiet) as store:
        view = CampaignsView(store)
        if view.campaign(campaign) is None:
            raise NotFoundError(f"no campaign {campaign}")
        rows = view.events(campaign, args.metric, args.limit, args.after)
    emit(args, ("event_id", "occurred_at", "channel", "customer_id"), rows)
    return Exit.OK


def _segments_view(store: ReadStore) -> SegmentsView:
    """Segments whose ``rfm`` rules score over the configured period and currency."""
    sales = load_settings().sales
    return SegmentsView(store, sales.rfm_period_days, sales.rfm_currency)


def _segments(args: argparse.Namespace) -> int:
    with read_models(quiet=args.quiet) as store:
        view = _segments_view(store)
        rows = [{**s, "members": len(view.members(s["rule"], _day(args.as_of))),
                 "rule": json.dumps(s["rule"], sort_keys=True)} for s in view.segments()]
    emit(args, ("name", "members", "segment_id", "rule"), rows)
    return Exit.OK


def _members(args: argparse.Namespace) -> int:
    segment = _uuid(args.segment_id, "segment")
    with read_models(quiet=args.quiet) as store:
        view = _segments_view(store)
        found = view.segment(segment)
        if found is None:
            raise NotFoundError(f"no segment {segment}")
        rows = [{"customer_id": c} for c in view.members(found["rule"], _day(args.as_of))]
    emit(args, ("customer_id",), rows)
    return Exit.OK


def _consent(args: argparse.Namespace) -> int:
    with read_models(quiet=args.quiet) as store:
        rows = ConsentView(store).totals(_day(args.as_of))
    emit(args, ("consent_channel", "purpose", "valid", "lapsed", "withdrawn", "expired"), rows)
    return Exit.OK


def _command(args: argparse.Namespace) -> int:
    cmd = args.model.model_validate(model_input(args, args.model))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _send(args: argparse.Namespace) -> int:
    from touchstream.cli.replies import template_ref, variables
    template = {} if args.template is None else {
        "template_id": template_ref(args.template), "variables": variables(args.var)}
    body = SendCampaignIn(campaign_id=_uuid(args.campaign_id, "campaign"),  # type: ignore[arg-type]
                          from_address=args.from_address, subject=args.subject,
                          body_text=args.body_file.read() if args.body_file else "", **template)
    with read_models(quiet=True), opened() as deps:
        links = MarketingLinks(secret=deps.forms.secret,
                               base_url=deps.settings.core.public_base_url)
        report = send_campaign(deps.hub, _segments_view(deps.read_store), links, body,
                               "cli:marketing", datetime.now(UTC))
    print(json.dumps(report.__dict__, sort_keys=True))
    return Exit.OK
