"""``touchstream account …``: open and change accounts, link people to them, read the
directory, one account, and its timeline (the read models, brought up to date first).

Exit codes as everywhere (``touchstream.cli.exits``): 2 bad input (an invalid VAT
number or postcode, an unparseable id), 3 refused by a rule (a cycle, an
overlapping period, a merged person), 4 no such account or customer.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any
from uuid import UUID

from commands import accounts as a
from commands.messages import Command
from projections.accounts.view import AccountsView
from projections.timeline.view import Cursor, TimelineFilter
from touchstream.cli.access import WITHHELD, command_line, record_reads
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

PAGE = 200
_WRITES: dict[str, tuple[type[Command], str]] = {
    "open": (a.OpenAccount, "open an account (addresses: --json on stdin)"),
    "change": (a.ChangeAccount, "change name, identifiers, industry, size, owner"),
    "parent": (a.SetAccountParent, "hang an account under another (cycles refused)"),
    "partner": (a.AssignAccountPartner, "assign an account to a partner"),
    "link": (a.LinkContact, "a person begins to act for an account"),
    "unlink": (a.UnlinkContact, "a person stops acting for an account"),
    "move": (a.MoveContact, "a person moves from one account to another"),
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("account", help="accounts (companies) and their contacts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (model, help_) in _WRITES.items():
        p = actions.add_parser(name, help=help_, description=model.__doc__ or help_)
        add_model_flags(p, model)
        p.set_defaults(func=_write, model=model)
    p = actions.add_parser("list", help="accounts by name (a table; --json, --csv)")
    p.add_argument("--owner")
    p.add_argument("--parent-id")
    p.add_argument("--limit", type=int, default=200)
    _formats(p)
    p.set_defaults(func=_list)
    p = actions.add_parser("show", help="one account: hierarchy and contact periods")
    p.add_argument("account")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)
    p = actions.add_parser("timeline", help="its contacts' events while they acted for it, "
                                            "and its own, newest first")
    p.add_argument("account")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--all", action="store_true")
    p.add_argument("--channel", action="append", default=[])
    p.add_argument("--search")
    _formats(p)
    p.set_defaults(func=_timeline)


def _formats(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="one JSON object per line")
    group.add_argument("--csv", action="store_true", help="CSV with a header row")


def _write(args: argparse.Namespace) -> int:
    cmd = args.model(**model_input(args, args.model))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def account_id(raw: str) -> str:
    try:
        return str(UUID(raw))
    except ValueError as exc:
        raise CliError(f"not an account id: {raw!r}") from exc


def emit(args: argparse.Namespace, headers: tuple[str, ...], rows: list[tuple[Any, ...]],
         items: list[Any], stretch: int | None = None) -> None:
    """Rows as a table, JSON lines (``items``) or CSV."""
    if args.json:
        for item in items:
            print_json(item)
    elif args.csv:
        out = csv.writer(sys.stdout)
        out.writerow(headers)
        out.writerows(rows)
    else:
        for line in table(headers, rows, stretch=stretch):
            print(line)


def _list(args: argparse.Namespace) -> int:
    with read_models(quiet=args.json or args.csv) as store:
        items, _ = AccountsView(store).directory(
            limit=args.limit, owner=args.owner,
            parent_id=account_id(args.parent_id) if args.parent_id else None)
    rows = [(i["account_id"], i["name"], i["vat_number"], i["size"], i["owner"], i["parent_id"])
            for i in items]
    emit(args, ("ACCOUNT", "NAME", "VAT", "SIZE", "OWNER", "PARENT"), rows, items, stretch=1)
    return Exit.OK


def _show(args: argparse.Namespace) -> int:
    asked = account_id(args.account)
    with read_models(quiet=args.json) as store:
        found = AccountsView(store).detail(asked)
    if found is None:
        raise NotFoundError(f"no account {asked}")
    if args.json:
        print_json(found)
        return Exit.OK
    print(found["name"])
    for label in ("account_id", "vat_number", "company_number", "industry", "size", "owner",
                  "partner_id"):
        print(f"{label:<15} {found[label] or '-'}")
    print("within          " + (" < ".join(x["name"] for x in found["ancestors"]) or "-"))
    print("subsidiaries    " + (", ".join(x["name"] for x in found["children"]) or "-"))
    print("\nContacts")
    for line in table(("CUSTOMER", "ROLE", "JOINED (UTC)", "LEFT (UTC)"),
                      [(c["customer_id"], c["role"], when(c["joined_at"]), when(c["left_at"]))
                       for c in found["contacts"]]):
        print(line)
    return Exit.OK


def _timeline(args: argparse.Namespace) -> int:
    asked = account_id(args.account)
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    wanted = None if args.all else args.limit
    where = TimelineFilter(channels=tuple(args.channel), text=args.search)
    with read_models(quiet=args.json or args.csv) as store:
        view = AccountsView(store)
        if view.resolve(asked) is None:
            raise NotFoundError(f"no account {asked}")
        entries: list[Any] = []
        cursor: Cursor | None = None
        more = True
        while more and (wanted is None or len(entries) < wanted):
            size = PAGE if wanted is None else min(PAGE, wanted - len(entries))
            page = view.page(asked, limit=size, cursor=cursor, where=where)
            entries += page.items
            more = page.next_cursor is not None
            cursor = Cursor.decode(page.next_cursor) if page.next_cursor else None
        record_reads(store, command_line(
            "account timeline {account}", limit=wanted, all=args.all, channel=args.channel,
            search=WITHHELD if args.search else None, json=args.json, csv=args.csv),
            [e["customer_id"] for e in entries if e["customer_id"]])
    rows = [(when(e["occurred_at"]), e["customer_id"] or "(account)", e["channel"], e["kind"],
             " · ".join(x for x in (e["subject"], e["summary"]) if x)) for e in entries]
    emit(args, ("WHEN (UTC)", "WHO", "CHANNEL", "KIND", "WHAT"), rows, entries, stretch=4)
    if not entries and not (args.json or args.csv):
        print("(nothing recorded)")
    return Exit.OK
