"""``touchstream customer …``: create, show, find, merge, unmerge, and small edits."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import UTC, date, datetime, time
from uuid import UUID

from commands import messages as m
from projections.summary.view import SummaryView
from replays.asof import customer_as_of
from touchstream.cli import privacy
from touchstream.cli.access import command_line, record_reads
from touchstream.cli.common import open_hub, print_json, print_recorded
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import customer_id, existing, read_models
from touchstream.cli.summary import render_summary


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("customer", help="create, show, find, merge or unmerge customers")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("create", help="register a customer")
    p.add_argument("--name", required=True)
    p.add_argument("--company")
    p.add_argument("--stage", default="prospect", choices=["prospect", "target", "current", "lost"])
    for kind in ("email", "phone", "fax"):
        p.add_argument(f"--{kind}", action="append", default=[], help=f"{kind} (repeatable)")
    p.add_argument("--id", help="customer id to use (default: derived from the source key)")
    p.add_argument("--source-key", help="idempotency key (a retry with it records nothing new)")
    p.set_defaults(func=_create)

    p = actions.add_parser(
        "show", help="a customer's profile, contact points and counts (the summary read model)",
        description="Show a customer as staff see it: profile, stage, contact points, "
                    "touches and last contact per channel, open callbacks, merged records. "
                    "Reads the summary read model (brought up to date first).")
    p.add_argument("customer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_show)

    p = actions.add_parser(
        "as-of", help="the customer as on a past date: as it happened, or (--known-at) as the "
                      "hub knew it then")
    p.add_argument("customer")
    p.add_argument("at", metavar="DATE", help="YYYY-MM-DD (end of that day, UTC) or ISO 8601 time")
    p.add_argument("--known-at", help="only what was recorded by this time (ISO 8601)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_as_of)

    p = actions.add_parser("find", help="find the customer owning an email, phone or fax")
    group = p.add_mutually_exclusive_group(required=True)
    for kind in ("email", "phone", "fax"):
        group.add_argument(f"--{kind}")
    p.add_argument("--id-only", action="store_true",
                   help="print only the customer id (for scripts: ID=$(touchstream customer "
                        "find … --id-only))")
    p.set_defaults(func=_find)

    p = actions.add_parser("merge", help="merge SOURCE (a duplicate) into TARGET")
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(func=_merge)

    p = actions.add_parser("unmerge", help="undo the merge of SOURCE")
    p.add_argument("source")
    p.add_argument("--source-key")
    p.set_defaults(func=_unmerge)

    p = actions.add_parser("stage", help="change the lifecycle stage")
    p.add_argument("customer")
    p.add_argument("stage", choices=["prospect", "target", "current", "lost"])
    p.add_argument("--reason")
    p.set_defaults(func=_stage)

    p = actions.add_parser("add-contact", help="add an email, phone or fax")
    p.add_argument("customer")
    p.add_argument("kind", choices=["email", "phone", "fax"])
    p.add_argument("value")
    p.set_defaults(func=_add_contact)

    p = actions.add_parser("note", help="add an internal note")
    p.add_argument("customer")
    p.add_argument("text")
    p.set_defaults(func=_note)

    p = actions.add_parser(
        "void-touchpoint", help="void a touchpoint recorded by mistake (it stays in the log)")
    p.add_argument("customer", help="the customer whose timeline shows it")
    p.add_argument("event", help="the touchpoint's event id (from the timeline)")
    p.add_argument("--reason", required=True)
    p.add_argument("--source-key", help="idempotency key (default: the event id)")
    p.set_defaults(func=_void)

    p = actions.add_parser(
        "correct-touchpoint", help="correct a touchpoint's date or text (the original stays)")
    p.add_argument("customer", help="the customer whose timeline shows it")
    p.add_argument("event", help="the touchpoint's event id (from the timeline)")
    p.add_argument("--reason", required=True)
    p.add_argument("--occurred-at", help="when it really happened (RFC 3339 with offset)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a corrected text field: agent, queue, summary, subject, staff, place, "
                        "purpose or notes (repeatable; FIELD= clears it)")
    p.add_argument("--source-key", help="idempotency key (a retry with it records nothing new)")
    p.set_defaults(func=_correct)

    privacy.register_customer_actions(actions)


def _uuid(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError as exc:
        raise CliError(f"not a customer id: {raw!r}") from exc


def _create(args: argparse.Namespace) -> int:
    points = [{"kind": k, "value": v} for k in ("email", "phone", "fax") for v in getattr(args, k)]
    cmd = m.RegisterCustomer(
        name=args.name, company=args.company, lifecycle_stage=args.stage,
        contact_points=points, customer_id=args.id, source_key=args.source_key, actor="cli",
    )
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _show(args: argparse.Namespace) -> int:
    asked = customer_id(args.customer)
    with read_models(quiet=args.json) as store:
        view = SummaryView(store)
        root = existing(view.resolve(asked), asked).root
        summary = view.summary(root)
        if summary is None:
            raise NotFoundError(f"no customer {asked}")
        record_reads(store, command_line("customer show {customer}", json=args.json),
                     [asked, root])
    if args.json:
        print_json(summary)
    else:
        if root != asked:
            print(f"customer {asked} was merged into {root}: showing {root}")
        print("\n".join(render_summary(summary)))
    return Exit.OK


def _as_of(args: argparse.Namespace) -> int:
    asked = _uuid(args.customer)
    at, known_at = as_of_moment(args.at), (as_of_moment(args.known_at) if args.known_at else None)
    with open_hub() as hub:
        hub.customer(asked)  # CustomerNotFoundError: exit 4
        view = customer_as_of(str(asked), hub.stream(asked), at, known_at)
        with read_models(quiet=True) as store:
            record_reads(store, command_line("customer as-of {customer} …",
                                             known_at=args.known_at), [str(asked)])
    if args.json:
        print_json(asdict(view))
        return Exit.OK
    when = f"as known at {view.known_at}" if view.known_at else "as it happened"
    print(f"customer {asked} on {view.at} ({when})")
    if not view.exists:
        print("  not yet registered")
        return Exit.OK
    print(f"  name: {view.name or '-'}   company: {view.company or '-'}   "
          f"stage: {view.lifecycle_stage}   partner: {view.partner_id or '-'}")
    if view.merged_into:
        print(f"  merged into {view.merged_into}")
    for kind, values in sorted(view.contact_points.items()):
        print(f"  {kind}: {', '.join(values) or '-'}")
    touches = ", ".join(f"{c} {n}" for c, n in sorted(view.touchpoints.items())) or "none"
    print(f"  touchpoints: {touches}; last contact {view.last_contact or '-'}")
    for cb in view.open_callbacks:
        print(f"  open callback {cb['callback_id']} requested {cb['requested_at']}")
    for late in view.learned_later:
        print(f"  learned later: {late.kind} {late.event_id} occurred {late.occurred_at}, "
              f"recorded {late.recorded_at}")
    return Exit.OK


def as_of_moment(raw: str) -> datetime:
    """A date (its end, UTC) or an ISO 8601 time (UTC when it names no zone)."""
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise CliError(f"not a date or ISO 8601 time: {raw!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _find(args: argparse.Namespace) -> int:
    kind = next(k for k in ("email", "phone", "fax") if getattr(args, k))
    with open_hub() as hub:
        found = hub.find_by_contact(kind, getattr(args, kind))
    if found is None:
        if args.id_only:
            raise NotFoundError(f"no customer owns {kind} {getattr(args, kind)!r}")
        print_json({"found": False})
        return Exit.NOT_FOUND
    if args.id_only:
        print(found)
    else:
        print_json({"found": True, "customer_id": found})
    return Exit.OK


def _merge(args: argparse.Namespace) -> int:
    cmd = m.MergeCustomers(source_id=_uuid(args.source), target_id=_uuid(args.target), actor="cli")
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _unmerge(args: argparse.Namespace) -> int:
    cmd = m.UnmergeCustomer(source_id=_uuid(args.source), source_key=args.source_key, actor="cli")
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _stage(args: argparse.Namespace) -> int:
    cmd = m.ChangeLifecycleStage(customer_id=_uuid(args.customer), to_stage=args.stage,
                                 reason=args.reason, actor="cli")
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _add_contact(args: argparse.Namespace) -> int:
    cmd = m.AddContactPoint(customer_id=_uuid(args.customer), actor="cli",
                            contact=m.ContactPointIn(kind=args.kind, value=args.value))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _note(args: argparse.Namespace) -> int:
    cmd = m.AddNote(customer_id=_uuid(args.customer), text=args.text, actor="cli")
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _void(args: argparse.Namespace) -> int:
    cmd = m.VoidTouchpoint(customer_id=_uuid(args.customer), event_id=_event(args.event),
                           reason=args.reason, source_key=args.source_key, actor="cli")
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _correct(args: argparse.Namespace) -> int:
    changes: dict[str, str | None] = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise CliError(f"--set takes FIELD=VALUE, got {item!r}")
        changes[field] = value or None
    cmd = m.CorrectTouchpoint.model_validate({
        "customer_id": _uuid(args.customer), "event_id": _event(args.event),
        "corrected_occurred_at": args.occurred_at, "changes": changes, "reason": args.reason,
        "source_key": args.source_key, "actor": "cli"})
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _event(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError as exc:
        raise CliError(f"not an event id: {raw!r}") from exc
