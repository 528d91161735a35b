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

if TYPE_CHECKING:  # imapclient and aiosmtplib load only when an email command runs
    from channels.email.imap import ImapIngester
    from touchstream.bootstrap import Dependencies

EXIT_SERVER = 6  # the mail server could not be reached or broke off


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
        "recorded and exits 1 on a gap; --since backfills messages received since a date.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--follow", action="store_true", help="keep running until interrupted")
    mode.add_argument("--verify", action="store_true", help="report messages never recorded")
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
    q.add_argument("--body", required=True, help="plain-text body ('-' reads stdin)")
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
            return EXIT_SERVER
        finally:
            ingester.state.close()


def _imap_action(args: argparse.Namespace, deps: Dependencies, ingester: ImapIngester) -> int:
    hub = deps.hub
    if args.verify:
        gaps = ingester.verify(lambda key: hub.recorded(key) is not None, args.since)
        for gap in gaps:
            print_json(asdict(gap))
        if gaps:
            print(f"touchstream: {len(gaps)} message(s) not recorded", file=sys.stderr)
            return 1
        return 0
    if args.follow:
        from touchstream.email_wiring import exclusive_runner

        stop = _stop_on_signals()
        with exclusive_runner(deps.settings, "imap", stop) as acquired:
            if acquired:
                ingester.follow(stop)
        return 0
    for report in ingester.run_once(args.since):
        print_json(asdict(report))
    return 0


def _queue(args: argparse.Namespace) -> int:
    from commands import email_messages as em
    from touchstream.cli.common import print_recorded

    body = sys.stdin.read() if args.body == "-" else args.body
    cmd = em.SendEmail(
        source_key=args.source_key, from_address=args.from_address, to=args.to, cc=args.cc,
        subject=args.subject, body_text=body, customer_id=args.customer_id,
        in_reply_to=args.in_reply_to, references=args.reference, actor="cli",
    )
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return 0


def _send(args: argparse.Namespace) -> int:
    from touchstream.email_wiring import build_sender, exclusive_runner

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with opened() as deps:
        sender = build_sender(deps)
        if args.follow:
            stop = _stop_on_signals()
            with exclusive_runner(deps.settings, "smtp", stop) as acquired:
                if acquired:
                    sender.follow(stop)
            return 0
        outcomes = sender.run_once()
        print_json({o: outcomes.count(o) for o in ("sent", "failed", "unknown")})
    return 0


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
    return 0
