"""IMAP ingest rate vs the raw imapclient fetch rate of the same messages, in one run.

A throwaway Dovecot is filled with N realistic messages (plain, HTML
alternatives, some with 20–100 kB attachments; ~200 senders). The ceiling is
fetching the same messages with imapclient alone (same batch size, bodies
read); the figure is a full ``ingest imap`` pass into a fresh store: fetch,
parse, blobs, one recorded event per message, checkpoint. Target ratio ≥ 0.5.

What bounds it, measured in the same run (issue 17):

- ``parse_floor_vs_raw_fetch``: the raw fetch of the same messages again (same client,
  batches and items as the ceiling) plus the parse the ingester must make of each
  (``parse_fetched`` with the channel's limits, the standard library as the ingester
  calls it), one process, nothing written: no blobs, no events, no state. Its rate vs
  the raw fetch rate: what fetching and parsing cost on one core before any recording.
- ``*_cpu_ms_per_msg`` of every process over the ingest: the ingesting process (all its
  threads), its fetch-ahead worker, Dovecot (all its processes, from ``/proc``) and,
  on the embedded PostgreSQL, the server (all its processes); ``all_cpu_ms_per_msg``
  their sum. ``cpu_floor_vs_raw_fetch``: the rate the ingest would reach if that CPU
  were spread over every core of the machine (``cpu_count``) with no wait at all, vs
  the raw fetch rate: ``ingest_vs_raw_fetch`` cannot exceed it on this machine.
  0 where there is no ``/proc`` (Dovecot's, PostgreSQL's CPU then read 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from channels.email.config import InboundRules
from channels.email.imap import PassReport
from channels.email.parse import ParsedEmail, parse_fetched
from commands import messages as m
from touchstream import wiring
from touchstream.bench import pg
from touchstream.bench.dovecot import PASSWORD, Dovecot, available
from touchstream.bench.proc import tree_cpu_s
from touchstream.bench.stores import fresh_settings
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester
from touchstream.settings import EmailSettings, ImapSettings, Settings

DEFAULT_MESSAGES = 2000
TARGETS = {"ingest_vs_raw_fetch": (">=", 0.5)}
SENDERS = 200
BATCH = 100
WORDS = ["invoice", "order", "delivery", "account", "refund", "boiler", "service", "visit", "thanks", "please", "question", "payment", "contract", "meter", "reading", "address", "appointment", "engineer", "parts", "warranty"]


def realistic_messages(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = f"Customer {i % SENDERS} <customer{i % SENDERS}@example.com>"
        msg["To"] = "support@shop.example"
        msg["Subject"] = " ".join(rng.choices(WORDS, k=rng.randint(2, 7))).capitalize()
        msg["Date"] = format_datetime(start + timedelta(minutes=7 * i))
        msg["Message-ID"] = f"<bench-{i}-{rng.getrandbits(32):08x}@example.com>"
        if i % 3 == 1:
            msg["In-Reply-To"] = f"<bench-{i - 1}@example.com>"
            msg["References"] = f"<bench-{i - 1}@example.com>"
        text = "\n\n".join(" ".join(rng.choices(WORDS, k=rng.randint(20, 120)))
                           for _ in range(rng.randint(1, 6)))
        msg.set_content(text)
        if i % 5 == 0:
            msg.add_alternative(f"<html><body><p>{text.replace(chr(10), '<br>')}</p></body></html>",
                                subtype="html")
        if i % 10 == 0:
            msg.add_attachment(rng.randbytes(rng.randint(20_000, 100_000)), maintype="application",
                               subtype="pdf", filename=f"document-{i}.pdf")
        out.append(msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return out


def raw_fetch(server: Dovecot, user: str, rules: InboundRules | None = None) -> tuple[int, int]:
    """Messages and bytes fetched; with ``rules``, each message is also parsed as the
    ingester parses it (the parse floor), and a message that does not parse fails."""
    client = server.client(user)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = sorted(client.search(["ALL"]))
        total = count = 0
        for i in range(0, len(uids), BATCH):
            for item in client.fetch(uids[i:i + BATCH], ["BODY.PEEK[]"]).values():
                raw = item[b"BODY[]"]
                total += len(raw)
                count += 1
                if rules is not None and not isinstance(parse_fetched(
                        raw, True, len(raw), rules.max_bytes, rules.max_depth), ParsedEmail):
                    raise RuntimeError(f"bench message {count} did not parse")
        return count, total
    finally:
        client.logout()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES,
                        help=f"messages in the mailbox (default {DEFAULT_MESSAGES})")


def run(args: Any) -> dict[str, Any]:
    n = int(getattr(args, "messages", DEFAULT_MESSAGES))
    if n < 1:
        raise ValueError("--messages must be at least 1")
    reason = available()
    if reason:
        raise ValueError(f"bench email needs Dovecot: {reason}")
    server = Dovecot()
    try:
        server.start()
        user = server.new_user()
        server.append(user, *realistic_messages(n))
        raw_fetch(server, user)  # warm Dovecot's index and page cache for both contenders
        t0 = time.perf_counter()
        fetched, raw_bytes = raw_fetch(server, user)
        raw_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        parsed, _ = raw_fetch(server, user, EmailSettings.from_env(_env(server, user)).rules())
        floor_s = time.perf_counter() - t0
        with fresh_settings(getattr(args, "store", "sqlite")) as settings:
            report, ingest_s, cpu = _ingest(server, user, settings)
        raw_rate = fetched / raw_s
        ingest_rate = report.seen / ingest_s
        per_msg = {k: round(v / max(report.seen, 1) * 1000, 3) for k, v in cpu.items()}
        all_cpu_s = sum(cpu.values()) / max(report.seen, 1)
        return {
            "scenario": "email",
            "store": settings.event_store_kind,
            "figures": {
                "mailbox_messages": n,
                "mailbox_bytes": raw_bytes,
                "raw_fetch_msgs_per_s": round(raw_rate, 1),
                "ingest_msgs_per_s": round(ingest_rate, 1),
                "raw_fetch_s": round(raw_s, 3),
                "ingest_s": round(ingest_s, 3),
                # CPU per message: the ingesting process (all its threads), and the worker
                # process that fetches and parses ahead (issue 17: the critical path is
                # the first; both share the machine's cores with Dovecot)
                "ingest_cpu_ms_per_msg": per_msg["ingest"],
                "fetch_ahead_cpu_ms_per_msg": per_msg["fetch_ahead"],
                "dovecot_cpu_ms_per_msg": per_msg["dovecot"],
                "postgres_cpu_ms_per_msg": per_msg["postgres"],
                "all_cpu_ms_per_msg": round(all_cpu_s * 1000, 3),
                "parse_floor_msgs_per_s": round(parsed / floor_s, 1),
                "recorded_messages": report.recorded,
                "quarantined_messages": report.quarantined,
                "preregistered_senders": SENDERS,
            },
            "ratios": {
                "ingest_vs_raw_fetch": round(ingest_rate / raw_rate, 3),
                # Bounds (module docstring): fetch + parse alone on one core; and every
                # process's CPU of the ingest spread over all cores with no wait.
                "parse_floor_vs_raw_fetch": round(parsed / floor_s / raw_rate, 3),
                "cpu_floor_vs_raw_fetch": round(
                    (os.cpu_count() or 1) / all_cpu_s / raw_rate, 3) if all_cpu_s else 0.0,
            },
        }
    finally:
        server.destroy()


def _env(server: Dovecot, user: str) -> dict[str, str]:
    return {
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_PORT": str(server.port),
        "TOUCHSTREAM_IMAP_SECURITY": "plain", "TOUCHSTREAM_IMAP_USER": user,
        "TOUCHSTREAM_IMAP_PASSWORD": PASSWORD, "TOUCHSTREAM_IMAP_BATCH": str(BATCH),
        "TOUCHSTREAM_EMAIL_STAFF": "shop.example",
    }


def _ingest(server: Dovecot, user: str,
            settings: Settings) -> tuple[PassReport, float, dict[str, float]]:
    """The pass's report, wall seconds, and CPU seconds of each party during the pass:
    this process, the workers it started and reaped, Dovecot, the embedded PostgreSQL
    (0 when not measured)."""
    env = _env(server, user)
    servers = {"dovecot": server.master_pid(),
               "postgres": pg.server_pid() if settings.event_store_kind == "postgres" else None}
    hub = wiring.build_hub(settings)
    try:
        for c in range(SENDERS):  # a support inbox hears mostly from existing customers
            hub.execute(m.RegisterCustomer(
                name=f"Customer {c}", source_key=f"bench-customer-{c}",
                contact_points=[m.ContactPointIn(kind="email", value=f"customer{c}@example.com")],
            ))
        mailbox = settings.model_copy(update={"imap": ImapSettings.from_env(env),
                                              "email": EmailSettings.from_env(env)})
        ingester = build_ingester(Dependencies(mailbox, hub=hub))
        try:
            held = {name: tree_cpu_s(pid) for name, pid in servers.items()}
            before, c0, t0 = os.times(), time.process_time(), time.perf_counter()
            (report,) = ingester.run_once()
            wall, cpu, after = time.perf_counter() - t0, time.process_time() - c0, os.times()
            spent = {name: tree_cpu_s(pid) for name, pid in servers.items()}
            children = (after.children_user + after.children_system
                        - before.children_user - before.children_system)
            cpus = {"ingest": cpu, "fetch_ahead": children}
            for name, start in held.items():
                end = spent[name]
                cpus[name] = end - start if start is not None and end is not None else 0.0
            return report, wall, cpus
        finally:
            ingester.state.close()
    finally:
        hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m touchstream.bench.email")
    add_arguments(parser)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in {**result["figures"], **result["ratios"]}.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
