"""``touchstream ingest imap`` and ``touchstream send-email``: the email channel's processes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING, Any

from touchstream.bootstrap import opened
from touchstream.cli.common import open_hub, print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit

if TYPE_CHECKING:  # imapclient and aiosmtplib load only when an email command runs
    from channels.email.imap import ImapIngester
    from touchstream.bootstrap import Dependencies


def _subcommands(sub: argparse._SubParsersAction, name: str, help_: str) -> Any:  # type: ignore[type-arg]
    """The ``name`` group's sub-parsers, shared with other modules that add to it."""
    parser = sub.choices.get(name) or sub.add_parser(name, help=help_)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_source", metavar="SOURCE", required=True)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ingest = _subcommands(sub, "ingest", "ingest touchpoints from an outside source")
    p = ingest.add_parser(
        "imap", help="ingest the configured IMAP mailbox folders (TOUCHSTREAM_IMAP_*)",
        description="One pass over the configured folders; --follow keeps running (IDLE + "
        "polling, reconnects with backoff); --verify compares the mailbox with what was "
        "recorded, lists quarantined messages apart, and exits 1 on a gap; "
        "--retry-quarantined reads quarantined messages again and records those whose "
        "cause has gone away; --since backfills messages received since a date.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--follow", action="store_true", help="keep running until interrupted")
    mode.add_argument("--verify", action="store_true",
                      help="report messages never recorded (exit 1) and those quarantined")
    mode.add_argument("--retry-quarantined", action="store_true",
                      help="record quarantined messages whose cause has gone away")
    p.add_argument("--since", type=_date, help="only messages received since YYYY-MM-DD")
    p.set_defaults(func=_ingest_imap)

    email = sub.add_parser("email", help="queue outbound email, run the sender, show the outbox")
    actions = email.add_subparsers(dest="email_action", metavar="ACTION", required=True)
    q = actions.add_parser("queue", help="record the intent to send an email to a customer")
    q.add_argument("--source-key", required=True, help="idempotency key; fixes the Message-ID")
    q.add_argument("--from", dest="from_address", required=True)
    q.add_argument("--to", action="append", required=True, help="recipient (repeatable)")
    q.add_argument("--cc", action="append", default=[])
    q.add_argument("--subject", default="")
    q.add_argument("--body", default="", help="plain-text body ('-' reads stdin); or --template")
    q.add_argument("--template", help="render this message template (name or id) instead")
    q.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="a template variable (repeatable)")
    q.add_argument("--language", help="template language (default: the customer's)")
    q.add_argument("--case-id", help="the case the template may name")
    q.add_argument("--customer-id", help="the customer (default: found from the first recipient)")
    q.add_argument("--in-reply-to", help="Message-ID of the email being answered")
    q.add_argument("--reference", action="append", default=[], help="References entry (repeatable)")
    q.set_defaults(func=_queue)
    s = actions.add_parser("send", help="deliver queued emails (TOUCHSTREAM_SMTP_*)")
    s.add_argument("--follow", action="store_true", help="keep running until interrupted")
    s.set_defaults(func=_send)
    o = actions.add_parser("outbox", help="list the outbox (queued, sent, failed)")
    o.add_argument("--rebuild", action="store_true", help="rebuild it from the event log first")
    o.add_argument("--status", choices=["queued", "sent", "failed"])
    o.set_defaults(func=_outbox)
    qa = actions.add_parser("quarantine", help="list quarantined mail (reason, Message-ID, blobs)")
    qa.add_argument("--json", action="store_true", help="one JSON object per line")
    qa.add_argument("--reason", help="only this reason (e.g. no-customer, unmatched)")
    qa.add_argument("--all", action="store_true", help="include messages released by a retry")
    qa.set_defaults(func=_quarantine)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _ingest_imap(args: argparse.Namespace) -> int:
    from channels.email.imap import MailServerError
    from touchstream.email_wiring import build_ingester

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.follow and args.since:
        raise CliError("--since is a one-off backfill; run it without --follow")
    with opened() as deps:
        ingester = build_ingester(deps)
        try:
            return _imap_action(args, deps, ingester)
        except MailServerError as exc:
            print(f"touchstream: {exc}", file=sys.stderr)
            return Exit.SERVER
        finally:
            ingester.state.close()


def _imap_action(args: argparse.Namespace, deps: Dependencies, ingester: ImapIngester) -> int:
    hub = deps.hub
    if args.verify:
        found = ingester.verification(lambda key: hub.recorded(key) is not None, args.since)
        for gap in found.gaps:
            print_json({"status": "gap", **asdict(gap)})
        for held in found.quarantined:
            print_json({"status": "quarantined", **asdict(held)})
        if found.quarantined:
            print(f"touchstream: {len(found.quarantined)} message(s) quarantined (see `touchstream "
                  "email quarantine`; retry with --retry-quarantined)", file=sys.stderr)
        if found.gaps:
            print(f"touchstream: {len(found.gaps)} message(s) not recorded", file=sys.stderr)
            return Exit.PROBLEMS
        return Exit.OK
    if args.retry_quarantined:
        if args.since:
            raise CliError("--retry-quarantined reads every quarantined message; drop --since")
        for report in ingester.retry_quarantined():
            print_json(asdict(report))
        return Exit.OK
    if args.follow:
        from touchstream.email_wiring import follow_imap

        follow_imap(deps, _stop_on_signals())
        return Exit.OK
    for report in ingester.run_once(args.since):
        print_json(asdict(report))
    return Exit.OK


def _queue(args: argparse.Namespace) -> int:
    from commands import email_messages as em
    from touchstream.cli.common import print_recorded

    from touchstream.cli.replies import template_ref, variables

    body = sys.stdin.read() if args.body == "-" else args.body
    template = {} if args.template is None else {
        "template_id": template_ref(args.template), "variables": variables(args.var),
        "language": args.language, "case_id": args.case_id}
    cmd = em.SendEmail(
        source_key=args.source_key, from_address=args.from_address, to=args.to, cc=args.cc,
        subject=args.subject, body_text=body, customer_id=args.customer_id,
        in_reply_to=args.in_reply_to, references=args.reference, actor="cli", **template,
    )
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _send(args: argparse.Namespace) -> int:
    from touchstream.email_wiring import build_sender

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with opened() as deps:
        sender = build_sender(deps)
        if args.follow:  # beside other senders: each email is claimed by one of them
            sender.follow(_stop_on_signals())
            return Exit.OK
        outcomes = sender.run_once()
        print_json({o: outcomes.count(o) for o in ("sent", "failed", "unknown")})
    return Exit.OK


def _outbox(args: argparse.Namespace) -> int:
    from touchstream.email_wiring import HubOutbox

    with opened() as deps:
        outbox = HubOutbox(deps)
        if args.rebuild:
            outbox.rebuild()
        else:
            outbox.refresh()
        for entry in outbox.view.entries(args.status):
            print_json(asdict(entry))
    return Exit.OK


def _quarantine(args: argparse.Namespace) -> int:
    from channels.email.quarantine import quarantined_messages
    from touchstream.email_wiring import imap_state

    with opened() as deps:
        state = imap_state(deps.settings)
        try:
            found = quarantined_messages(deps.hub, state, include_released=args.all,
                                         reason=args.reason)
        finally:
            state.close()
    if args.json:
        for q in found:
            print_json(asdict(q))
        return Exit.OK
    if not found:
        print("no quarantined mail")
    for q in found:
        where = f"{q.account}/{q.folder}" + (f" uid {q.uid}" if q.uid is not None else "")
        released = f"  released as {q.released_as}" if q.released_as else ""
        print(f"{q.quarantined_at:%Y-%m-%d %H:%M} {q.reason:<15} {where}  "
              f"{q.message_id or '(no Message-ID)'}  raw={q.raw_ref or q.header_ref}{released}")
        if q.detail:
            print(f"    {q.detail[:200]}")
    return Exit.OK
