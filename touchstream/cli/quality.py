"""``touchstream quality …``: duplicate suggestions (accept: the reversible merge; reject:
never suggested again), and completeness and staleness per owner."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from uuid import UUID

from commands import quality as q
from commands.messages import strict_datetime
from projections.quality.view import DEFAULT_THRESHOLD, QualityView
from touchstream.cli.account import emit
from touchstream.cli.common import open_hub, print_json, print_recorded
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import read_models, table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("quality", help="data quality: duplicates, completeness, staleness")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("duplicates", help="likely duplicate customers and accounts, best "
                                              "first, with the reasons")
    p.add_argument("--kind", choices=("customer", "account"))
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"lowest score listed, 0.5-1 (default {DEFAULT_THRESHOLD})")
    p.add_argument("--limit", type=int, default=100)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="one JSON object per pair")
    group.add_argument("--csv", action="store_true")
    p.set_defaults(func=_duplicates)
    p = actions.add_parser("accept", help="merge DUPLICATE into SURVIVOR (undo: customer "
                                          "unmerge DUPLICATE)")
    p.add_argument("duplicate")
    p.add_argument("survivor")
    p.set_defaults(func=_accept)
    p = actions.add_parser("reject", help="FIRST and SECOND are different: never suggest again")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--kind", choices=("customer", "account"), default="customer")
    p.set_defaults(func=_reject)
    p = actions.add_parser("completeness", help="records missing a usable contact point or an "
                                                "owner, not reached for MONTHS, per owner")
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--as-of", help="RFC 3339 date-time (default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_completeness)


def _id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError as exc:
        raise CliError(f"not an id: {raw!r}") from exc


def _duplicates(args: argparse.Namespace) -> int:
    if not 0.5 <= args.threshold <= 1:
        raise CliError(f"--threshold must be between 0.5 and 1, got {args.threshold}")
    with read_models(quiet=args.json or args.csv) as store:
        found = QualityView(store).duplicates(kind=args.kind, threshold=args.threshold,
                                              limit=args.limit)
    pairs = found["pairs"]
    rows = [(p["kind"], p["first_id"], p["second_id"], f"{p['score']:.2f}",
             "; ".join(p["reasons"])) for p in pairs]
    emit(args, ("KIND", "FIRST", "SECOND", "SCORE", "REASONS"), rows, pairs, stretch=4)
    if not (args.json or args.csv):
        if not pairs:
            print("(no likely duplicates)")
        if found["more"]:
            print(f"(the best {len(pairs)}; --limit N for more)")
    return Exit.OK


def _accept(args: argparse.Namespace) -> int:
    with open_hub() as hub:
        print_recorded(hub.execute(q.AcceptDuplicate(duplicate_id=_id(args.duplicate),
                                                     survivor_id=_id(args.survivor))))
    return Exit.OK


def _reject(args: argparse.Namespace) -> int:
    with open_hub() as hub:
        print_recorded(hub.execute(q.RejectDuplicate(pair_kind=args.kind,
                                                     first_id=_id(args.first),
                                                     second_id=_id(args.second))))
    return Exit.OK


def _completeness(args: argparse.Namespace) -> int:
    as_of = strict_datetime(args.as_of) if args.as_of else datetime.now(UTC)
    if args.months < 1:
        raise CliError(f"--months must be at least 1, got {args.months}")
    with read_models(quiet=args.json) as store:
        report = QualityView(store).completeness(as_of=as_of, months=args.months)
    if args.json:
        print_json(report)
        return Exit.OK
    columns = ("customers", "no_usable_contact_point", "no_owner", "not_reached",
               "no_valid_consent", "unusable_contact_points", "accounts", "accounts_no_owner",
               "accounts_no_vat")
    rows = [(owner, *(counts.get(c, 0) for c in columns))
            for owner, counts in report["owners"].items()]
    for line in table(("OWNER", "CUSTOMERS", "NO CONTACT", "NO OWNER",
                       f"NOT REACHED {args.months}M", "NO CONSENT", "UNUSABLE", "ACCOUNTS",
                       "ACC NO OWNER", "ACC NO VAT"), rows):
        print(line)
    consent = report["consent"]
    print(f"consent: {consent['with_valid_consent']} with valid consent, "
          f"{consent['without_valid_consent']} without "
          f"({consent['withdrawn_or_expired']} withdrawn or expired)")
    return Exit.OK
