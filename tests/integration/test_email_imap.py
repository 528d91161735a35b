"""IMAP ingestion against a real Dovecot: nothing lost, nothing doubled, across crashes,
restarts and renumbering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from channels.email.imap import ImapIngester, IngestHooks
from channels.email.inbound import message_key
from commands.hub import Hub
from tests.support import dovecot as dv
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub
from tests.support.invariants import assert_no_duplicate_source_keys
from tests.support.mail import all_events, message, multipart, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester, email_services

ROOT = Path(__file__).resolve().parents[2]


def ingester(env: dict[str, str], hub: Hub) -> ImapIngester:
    return build_ingester(Dependencies(settings_mod.load(env), hub=hub))


def email_keys(hub: Hub) -> list[str]:
    return [e.source_key for e in of_type(all_events(hub), "EmailRecorded")]


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_one_pass_records_each_message_once_and_verify_finds_no_gap(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], *(message(i) for i in range(7)))
    ing = ingester(mailbox, hub)
    first = ing.run_once()
    second = ing.run_once()
    assert (first[0].recorded, second[0].seen) == (7, 0)
    assert len(set(email_keys(hub))) == len(email_keys(hub)) == 7
    assert ing.verify(lambda k: hub.recorded(k) is not None) == []
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(99))
    gaps = ing.verify(lambda k: hub.recorded(k) is not None)
    assert [g.problem for g in gaps] == ["not recorded"]


def test_verify_command_exits_non_zero_on_a_gap_and_zero_after_ingest(
    dovecot: dv.Dovecot, mailbox: dict[str, str]
) -> None:
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(1), message(2))
    env = {**os.environ, **mailbox}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["ingest", "imap", *args], env, timeout=60)

    before = cli("--verify")
    assert before.returncode == 1 and before.stdout.count("not recorded") == 2
    assert cli().returncode == 0
    after = cli("--verify")
    assert after.returncode == 0, after.stderr


def test_new_mail_is_recorded_while_following(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    ing = ingester(mailbox, hub)
    stop = threading.Event()
    worker = threading.Thread(target=ing.follow, args=(stop,), daemon=True)
    worker.start()
    try:
        dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(1))
        wait_for(lambda: len(email_keys(hub)) == 1)
        dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(2), message(3))
        wait_for(lambda: len(email_keys(hub)) == 3)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


# batches of 3 (8 messages): the fetch-ahead worker is running at both kills
@pytest.mark.parametrize(("die", "at"), [("after-record", 2), ("after-checkpoint", 1)])
def test_ingester_killed_mid_run_then_restarted_records_each_message_exactly_once(
    dovecot: dv.Dovecot, mailbox: dict[str, str], die: str, at: int
) -> None:
    raws = [message(i) for i in range(8)]
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], *raws)
    expected = {f"email|{message_key(r, f'<m{i}@example.com>')}" for i, r in enumerate(raws)}

    def run(job: dict[str, object]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tests.support.imap_ingest", json.dumps(job)],  # noqa: PLW1510
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    killed = run({"env": mailbox, "die": die, "at": at})
    assert killed.returncode == -9, killed.stderr
    finished = run({"env": mailbox, "die": None, "at": 0})
    assert finished.returncode == 0, finished.stderr
    hub = make_hub(mailbox)
    try:
        events = all_events(hub)
        assert sorted(email_keys(hub)) == sorted(expected)  # every message, each once
        assert_no_duplicate_source_keys(events)
    finally:
        hub.close()


def test_dovecot_restarted_while_following_loses_nothing(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    ing = ingester(mailbox, hub)
    stop = threading.Event()
    worker = threading.Thread(target=ing.follow, args=(stop,), daemon=True)
    worker.start()
    try:
        dovecot.append(user, message(1))
        wait_for(lambda: len(email_keys(hub)) == 1)
        dovecot.restart()
        dovecot.append(user, message(2), message(3))
        wait_for(lambda: len(email_keys(hub)) == 3, timeout=30)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert len(set(email_keys(hub))) == 3


def test_uidvalidity_change_is_recorded_and_the_rescan_adds_no_duplicate(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    dovecot.append(user, *(message(i) for i in range(4)))
    ing = ingester(mailbox, hub)
    ing.run_once()
    dovecot.set_uidvalidity(user, 4242)
    dovecot.append(user, message(10))
    report = ing.run_once()[0]
    assert report.renumbered and report.uidvalidity == 4242
    assert (report.seen, report.recorded, report.duplicates) == (5, 1, 4)
    changes = of_type(all_events(hub), "UidValidityChanged")
    assert [c.new_uidvalidity for c in changes] == [4242]
    assert len(email_keys(hub)) == len(set(email_keys(hub))) == 5
    assert ing.verify(lambda k: hub.recorded(k) is not None) == []


def test_lost_index_renumbers_uids_and_nothing_is_recorded_twice(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    dovecot.append(user, *(message(i) for i in range(5)))
    ing = ingester(mailbox, hub)
    ing.run_once()
    time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock
    dovecot.lose_index(user)
    dovecot.append(user, message(20))
    report = ing.run_once()[0]
    assert report.renumbered
    assert len(email_keys(hub)) == len(set(email_keys(hub))) == 6
    assert ing.verify(lambda k: hub.recorded(k) is not None) == []


def test_one_message_id_with_two_contents_is_two_messages_and_a_missing_id_still_records(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    same_id = "<dup@example.com>"
    dovecot.append(user, message(1, message_id=same_id, body="first"),
                   message(2, message_id=same_id, body="second"),
                   message(3, message_id=None), message(3, message_id=None))
    ingester(mailbox, hub).run_once()
    emails = of_type(all_events(hub), "EmailRecorded")
    assert sorted(e.body_text for e in emails) == ["Hello, this is message 3.", "first", "second"]
    assert len({e.source_key for e in emails}) == 3


def test_malformed_deep_and_oversized_messages_are_recorded_or_quarantined_never_lost(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    eight_bit = (b"From: J\xf6rg <joerg@example.com>\r\nTo: support@shop.example\r\n"
                 b"Subject: Gr\xfc\xdfe \xff\xfe\r\nMessage-ID: <8bit@example.com>\r\n\r\n"
                 b"Body with \xe9 raw 8-bit\r\n")
    unknown_charset = message(2, headers="").replace(b"charset=utf-8", b"charset=x-no-such-cs")
    broken_boundary = (b"From: bob@example.com\r\nTo: support@shop.example\r\n"
                       b"Message-ID: <bb@example.com>\r\nMIME-Version: 1.0\r\n"
                       b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n'
                       b"--other\r\nContent-Type: text/plain\r\n\r\nlost boundary\r\n")
    bad_base64 = (b"From: carol@example.com\r\nTo: support@shop.example\r\n"
                  b"Message-ID: <b64@example.com>\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: text/plain; charset=utf-8\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64===\r\n")
    deep = b"From: deep@example.com\r\nTo: support@shop.example\r\nMessage-ID: <deep@example.com>\r\n"
    deep += b"".join(f"Content-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n".encode()
                     for i in range(2000))
    deep += b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    latin1 = message(6, body="").replace(b"charset=utf-8", b"charset=iso-8859-1")
    latin1 = latin1.replace(b"\r\n\r\n\r\n", "\r\n\r\nCaf\u00e9 cr\u00e8me\r\n".encode("latin-1"))
    koi8 = message(7, body="").replace(b"charset=utf-8", b"charset=koi8-r")
    koi8 = koi8.replace(b"\r\n\r\n\r\n", "\r\n\r\n\u041f\u0440\u0438\u0432\u0435\u0442\r\n".encode("koi8-r"))
    big = message(8, size_pad=300_000)
    dovecot.append(user, eight_bit, unknown_charset, broken_boundary, bad_base64, deep, latin1,
                   koi8, big)
    ing = ingester(mailbox, hub)
    report = ing.run_once()[0]
    assert report.seen == 8
    events = all_events(hub)
    emails = {e.message_id: e for e in of_type(events, "EmailRecorded")}
    quarantined = {q.reason: q for q in of_type(events, "MessageQuarantined")}
    assert set(quarantined) == {"too-deep", "oversized"}
    blobs = Dependencies(settings_mod.load(mailbox)).blobs
    assert blobs.get(quarantined["too-deep"].raw_ref) == deep
    assert quarantined["oversized"].size > 300_000 and quarantined["oversized"].raw_ref is None
    assert b"Message-ID: <m8@example.com>" in blobs.get(quarantined["oversized"].header_ref)
    assert "\ufffd" in emails["<8bit@example.com>"].subject
    assert emails["<m6@example.com>"].body_text == "Caf\u00e9 cr\u00e8me"
    assert emails["<m7@example.com>"].body_text == "\u041f\u0440\u0438\u0432\u0435\u0442"
    assert "<bb@example.com>" in emails and "<b64@example.com>" in emails
    assert emails["<m2@example.com>"].body_text.startswith("Hello")
    assert ing.verify(lambda k: hub.recorded(k) is not None) == []


def test_attachments_go_to_the_blob_store_and_the_event_carries_only_their_hash(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    raw = multipart(1, [("text/html; charset=utf-8", b"<p>Hi <b>there</b></p><script>x()</script>", None),
                        ("application/pdf", pdf, "invoice.pdf")])
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], raw)
    ingester(mailbox, hub).run_once()
    (email,) = of_type(all_events(hub), "EmailRecorded")
    assert email.body_text == "Hi there"
    (att,) = email.attachments
    assert (att["filename"], att["size"], att["content_type"]) == ("invoice.pdf", len(pdf), "application/pdf")
    blobs = Dependencies(settings_mod.load(mailbox)).blobs
    assert blobs.get(att["sha256"]) == pdf and blobs.get(email.raw_ref) == raw


def test_backfill_since_a_date_records_only_newer_messages_and_leaves_the_checkpoint(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    client = dovecot.client(user)
    try:
        client.append("INBOX", message(1), msg_time=datetime(2020, 1, 5, tzinfo=UTC))
        client.append("INBOX", message(2), msg_time=datetime(2026, 3, 1, tzinfo=UTC))
    finally:
        client.logout()
    ing = ingester(mailbox, hub)
    (report,) = ing.run_once(since=date(2026, 1, 1))
    assert report.recorded == 1 and len(email_keys(hub)) == 1
    assert ing.state.checkpoint(ing.account, "INBOX").last_uid == 0  # type: ignore[union-attr]
    (full,) = ing.run_once()
    assert (full.recorded, full.duplicates) == (1, 1)


def test_messages_are_moved_only_after_they_are_recorded_when_configured(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    dovecot.append(user, message(1), message(2))
    dovecot.append(user, message(3), folder="Processed")
    moved: list[int] = []
    env = {**mailbox, "TOUCHSTREAM_IMAP_AFTER": "move:Processed"}
    ing = build_ingester(Dependencies(settings_mod.load(env), hub=hub), hooks=IngestHooks(
        after_record=lambda folder, uid, outcome: moved.append(len(_uids(dovecot, user)))))
    ing.run_once()
    assert moved == [2, 2]  # still in INBOX while being recorded
    assert _uids(dovecot, user) == [] and len(_uids(dovecot, user, "Processed")) == 3
    assert len(email_keys(hub)) == 2


def _uids(server: dv.Dovecot, user: str, folder: str = "INBOX") -> list[int]:
    client = server.client(user)
    try:
        client.select_folder(folder, readonly=True)
        return sorted(client.search(["ALL"]))
    finally:
        client.logout()


def test_serve_runs_the_imap_follower_as_a_background_service(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    deps = Dependencies(settings_mod.load(mailbox))
    (service,) = email_services(deps)
    service.start()
    try:
        dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(1))
        wait_for(lambda: len(email_keys(hub)) == 1)
    finally:
        service.stop()
        deps.close()


def test_a_26_mb_message_over_the_default_limit_is_quarantined_without_fetching_its_body(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    env = {k: v for k, v in mailbox.items() if k != "TOUCHSTREAM_EMAIL_MAX_BYTES"}  # 25 MB
    line = b"x" * 998 + b"\r\n"
    huge = message(1, body="") + line * (26 * 1024 * 1024 // len(line))
    dovecot.append(env["TOUCHSTREAM_IMAP_USER"], huge, message(2))
    ing = ingester(env, hub)
    (report,) = ing.run_once()
    assert (report.seen, report.recorded, report.quarantined) == (2, 1, 1)
    (q,) = of_type(all_events(hub), "MessageQuarantined")
    assert q.reason == "oversized" and q.size == len(huge) and q.raw_ref is None
    assert ing.verify(lambda k: hub.recorded(k) is not None) == []
