"""``touchstream timeline CUSTOMER``: what staff see, newest first, from the read model."""

from __future__ import annotations

import argparse

from projections.timeline.view import Cursor, TimelineEntry, TimelineFilter, TimelineView
from touchstream.cli.access import WITHHELD, command_line, record_reads
from touchstream.cli.common import print_json
from touchstream.cli.exits import Exit
from touchstream.cli.reading import customer_id, existing, read_models, table, when

PAGE = 200


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "timeline", help="a customer's touchpoints and life events, newest first (a table)",
        description="Read a customer's timeline as staff see it: every touchpoint and life "
                    "event, newest first, including customers merged into this one. Reads the "
                    "timeline read model (brought up to date first).")
    p.add_argument("customer", help="customer id")
    p.add_argument("--limit", type=int, default=20, help="newest N entries (default 20)")
    p.add_argument("--all", action="store_true", help="every entry (overrides --limit)")
    p.add_argument("--channel", action="append", default=[],
                   help="only this channel (repeatable: phone, email, fax, visit, web, system…)")
    p.add_argument("--search", help="only entries matching these words")
    p.add_argument("--json", action="store_true", help="one JSON object per entry")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    asked = customer_id(args.customer)
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    wanted = None if args.all else args.limit
    where = TimelineFilter(channels=tuple(args.channel), text=args.search)
    with read_models(quiet=args.json) as store:
        view = TimelineView(store)
        root = existing(view.resolve(asked), asked).root
        entries: list[TimelineEntry] = []
        cursor: Cursor | None = None
        more = True
        while more and (wanted is None or len(entries) < wanted):
            size = PAGE if wanted is None else min(PAGE, wanted - len(entries))
            page = view.page(root, limit=size, cursor=cursor, where=where)
            entries += page.items
            more = page.next_cursor is not None
            cursor = Cursor.decode(page.next_cursor) if page.next_cursor else None
        record_reads(store, command_line(
            "timeline {customer}", limit=wanted, all=args.all, channel=args.channel,
            search=WITHHELD if args.search else None, json=args.json), [asked, root])
    if args.json:
        for entry in entries:
            print_json(entry)
        return Exit.OK
    if root != asked:
        print(f"customer {asked} was merged into {root}: showing {root}")
    rows = [(when(e["occurred_at"]), e["channel"], e["direction"], e["kind"],
             e["actor"], ("[internal] " if e["internal"] else "")
             + " · ".join(x for x in (e["subject"], e["summary"]) if x)) for e in entries]
    for line in table(("WHEN (UTC)", "CHANNEL", "DIR", "KIND", "BY", "WHAT"), rows, stretch=5):
        print(line)
    if not entries:
        print("(nothing recorded)")
    elif more:
        print(f"(the newest {len(entries)}; --all or --limit N for more)")
    return Exit.OK
