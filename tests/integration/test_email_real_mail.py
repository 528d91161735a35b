"""Real mail through a real Dovecot: headers in every language, threads that hold, bounces
that find their message, quarantine that can be listed and retried, and a corpus of odd
and malformed messages (``tests/fixtures/mail``) accounted for — also under SIGKILL."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from channels.blobs import BlobStore
from channels.email.imap import ImapIngester
from commands import email_messages as em
from commands.hub import Hub
from tests.conftest import store_env
from tests.support import dovecot as dv
from tests.support import imap_ingest
from tests.support.api import running_api
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub
from tests.support.invariants import assert_no_duplicate_source_keys
from tests.support.mail import all_events, message, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.channel_routes import channel_routers
from touchstream.email_wiring import build_ingester

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "mail"
EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text())


def ingester(env: dict[str, str], hub: Hub) -> ImapIngester:
    return build_ingester(Dependencies(settings_mod.load(env), hub=hub))


def blobs_of(env: dict[str, str]) -> BlobStore:
    return Dependencies(settings_mod.load(env)).blobs


def recorded(hub: Hub) -> Any:
    return lambda key: hub.recorded(key) is not None


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env})


def fixture(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


# -- 1. headers in every language ---------------------------------------------------------


def test_raw_utf8_headers_and_an_idn_sender_are_recorded_readable(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], fixture("01-raw-utf8-headers.eml"),
                   fixture("02-encoded-words-latin1.eml"), fixture("03-encoded-words-koi8r.eml"),
                   fixture("04-shift-jis-body.eml"), fixture("11-idn-sender-domain.eml"))
    (report,) = ingester(mailbox, hub).run_once()
    assert (report.recorded, report.quarantined) == (5, 0)
    emails = {e.message_id: e for e in of_type(all_events(hub), "EmailRecorded")}
    utf8 = emails["<utf8-1@bücher.example>"]
    assert utf8.subject == "Überweisung für Rechnung №42 — danke 🙂"
    assert utf8.from_address == "kunde@xn--bcher-kva.example"
    assert utf8.body_text == "Guten Tag, die Überweisung ist unterwegs."
    assert emails["<c2@example.com>"].subject == "Grüße aus Köln"
    assert emails["<c3@example.com>"].subject == "Привет, мир"
    assert emails["<c4@example.com>"].subject == "請求書"
    assert emails["<c11@example.com>"].from_address == "info@xn--mller-bckerei-hfb76a.example"
    assert hub.find_by_contact("email", "kunde@bücher.example") == utf8.originator_id
    assert not any("\ufffd" in e.subject for e in emails.values())


# -- 3. threads follow the parent's recorded thread --------------------------------------


def test_a_thread_holds_with_in_reply_to_only_folded_references_and_a_reply_before_its_parent(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]

    def mail(n: str, sender: str = "ada@example.com", to: str = "support@shop.example",
             headers: str = "") -> bytes:
        return message(0, sender=sender, to=to, message_id=f"<{n}@t.example>",
                       subject=f"thread {n}", headers=headers)

    root = mail("a")
    with_refs = mail("b", "mia@shop.example", "ada@example.com",
                     "In-Reply-To: <a@t.example>\nReferences: <a@t.example>")
    only_irt = mail("c", headers="In-Reply-To: <b@t.example>")
    # a client that trimmed References to the last two, folded over two lines
    folded = mail("d", "mia@shop.example", "ada@example.com",
                  "In-Reply-To: <c@t.example>\nReferences: <b@t.example>\r\n\t<c@t.example>")
    parent = mail("f", headers="In-Reply-To: <d@t.example>\n"
                               "References: <a@t.example> <b@t.example>\r\n <d@t.example>")
    early = mail("e", "mia@shop.example", "ada@example.com",
                 "In-Reply-To: <f@t.example>\nReferences: <b@t.example> <f@t.example>")
    ing = ingester(mailbox, hub)
    dovecot.append(user, root, with_refs)
    ing.run_once()
    dovecot.append(user, only_irt, folded, early)  # the reply to f arrives before f
    ing.run_once()
    dovecot.append(user, parent)
    ing.run_once()
    emails = of_type(all_events(hub), "EmailRecorded")
    assert sorted(e.message_id for e in emails) == [f"<{n}@t.example>" for n in "abcdef"]
    assert len({e.thread_id for e in emails}) == 1
    # a newsletter reply from another customer never joins it
    dovecot.append(user, message(9, sender="bob@example.org", headers="In-Reply-To: <b@t.example>"))
    ing.run_once()
    bob = [e for e in of_type(all_events(hub), "EmailRecorded") if e.message_id == "<m9@example.com>"]
    assert bob[0].thread_id not in {e.thread_id for e in emails}


# -- 4. bounces find the message they bounce ---------------------------------------------


def _dsn(original: str, recipients: list[str]) -> bytes:
    blocks = "".join(f"Final-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
                     for r in recipients)
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: mia@shop.example\r\n"
        f"Subject: Undelivered\r\nMessage-ID: <dsn-{len(recipients)}@mx.example.net>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; '
        'boundary="r"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n'
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net"
        f"\r\n\r\n{blocks}--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original}\r\nSubject: Your invoice\r\n\r\n--r--\r\n"
    ).encode()


def test_a_bounce_lands_on_the_customer_of_the_sent_mail_and_a_foreign_one_creates_no_prospect(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    hub.execute(em.SendEmail(source_key="inv-1", from_address="mia@shop.example",
                            to=["ada@example.com"], subject="Your invoice", body_text="Hi"))
    (queued,) = of_type(all_events(hub), "EmailQueued")
    forwarded = _dsn(queued.message_id, ["ada@forwarded.example"])  # an alias, not ada's address
    foreign = fixture("45-dsn-unmatched.eml")  # 11 recipients of mail someone else sent
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], forwarded, foreign)
    ing = ingester(mailbox, hub)
    (report,) = ing.run_once()
    assert (report.recorded, report.quarantined) == (1, 1)
    events = all_events(hub)
    (bounce,) = of_type(events, "EmailBounced")
    assert bounce.originator_id == queued.originator_id
    assert bounce.recipient == "ada@forwarded.example"
    assert len(of_type(events, "Customer.Registered")) == 1  # ada's, from the send; no prospect
    (q,) = of_type(events, "MessageQuarantined")
    assert q.reason == "unmatched" and q.message_id == "<dsn45@mx.example.net>"
    assert blobs_of(mailbox).get(q.raw_ref) == foreign
    assert ing.verify(recorded(hub)) == []


# -- 2 (channel side) and the smaller items: quarantine listed, retried, counted once -----


def test_quarantined_mail_is_listed_apart_by_verify_and_recorded_by_a_retry_once_fixed(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    env = {**mailbox, "TOUCHSTREAM_EMAIL_MAX_BYTES": "130000"}
    dovecot.append(user, fixture("43-oversized.eml"), fixture("20-nesting-60-over-limit.eml"),
                   message(1))
    (first,) = ingester(env, hub).run_once()
    assert (first.recorded, first.quarantined) == (1, 2)
    oversized = next(q for q in of_type(all_events(hub), "MessageQuarantined")
                     if q.reason == "oversized")
    assert oversized.message_id == "<c43@example.com>"  # read from the header it kept
    verify = cli(env, "ingest", "imap", "--verify")
    assert verify.returncode == 0, verify.stderr
    lines = [json.loads(line) for line in verify.stdout.splitlines()]
    assert sorted((x["status"], x["uid"]) for x in lines) == [("quarantined", 1), ("quarantined", 2)]
    assert "2 message(s) quarantined" in verify.stderr
    listed = cli(env, "email", "quarantine", "--json")
    assert sorted(json.loads(x)["reason"] for x in listed.stdout.splitlines()) == [
        "oversized", "too-deep"]
    rerun = cli(env, "ingest", "imap")  # a rerun reports no quarantine it did not make
    assert json.loads(rerun.stdout)["quarantined"] == 0
    same = cli(env, "ingest", "imap", "--retry-quarantined")  # nothing changed: still kept aside
    assert json.loads(same.stdout)["released"] == 0 and json.loads(same.stdout)["quarantined"] == 0
    fixed = {**env, "TOUCHSTREAM_EMAIL_MAX_BYTES": "400000", "TOUCHSTREAM_EMAIL_MAX_DEPTH": "100"}
    retried = cli(fixed, "ingest", "imap", "--retry-quarantined")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["released"] == 2
    emails = of_type(all_events(hub), "EmailRecorded")
    assert sorted(e.message_id for e in emails) == [
        "<c20@example.com>", "<c43@example.com>", "<m1@example.com>"]
    after = cli(fixed, "ingest", "imap", "--verify")
    assert (after.returncode, after.stdout) == (0, "")
    assert cli(fixed, "email", "quarantine", "--json").stdout == ""
    released = [json.loads(x) for x in cli(fixed, "email", "quarantine", "--json", "--all")
                .stdout.splitlines()]
    assert all(r["released_as"].startswith("email|msg:") for r in released) and len(released) == 2


def test_a_fax_gateway_writing_international_digits_needs_no_default_region(
    dovecot: dv.Dovecot, mailbox: dict[str, str], tmp_path: Path
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    dovecot.append(user, fixture("44-fax-gateway-digits.eml"))
    base = {k: v for k, v in mailbox.items() if k != "TOUCHSTREAM_DEFAULT_REGION"}
    base["TOUCHSTREAM_EMAIL_FAX_GATEWAYS"] = "fax.example"
    national = {**base, **store_env("sqlite", tmp_path / "national")}
    national.pop("TOUCHSTREAM_DEFAULT_REGION")
    h = make_hub(national)
    try:
        assert ingester(national, h).run_once()[0].quarantined == 1  # "not a phone number"
    finally:
        h.close()
    intl = {**base, "TOUCHSTREAM_EMAIL_FAX_NUMBERS": "international"}
    h = make_hub(intl)
    try:
        assert ingester(intl, h).run_once()[0].recorded == 1
        (fax,) = of_type(all_events(h), "FaxRecorded")
        assert fax.from_number == "+442079460018"
        assert h.find_by_contact("fax", "+442079460018") == fax.originator_id
    finally:
        h.close()


def test_a_migrated_copy_with_one_added_header_is_not_recorded_twice(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    ing = ingester(mailbox, hub)
    dovecot.append(user, fixture("36-duplicate-id-content-1.eml"))
    ing.run_once()
    dovecot.append(user, fixture("38-migrated-copy-of-36.eml"), fixture("37-duplicate-id-content-2.eml"))
    (report,) = ing.run_once()
    assert (report.duplicates, report.recorded) == (1, 1)
    emails = of_type(all_events(hub), "EmailRecorded")
    assert sorted(e.subject for e in emails) == ["one", "two"]  # same id, other content: two
    assert ing.verify(recorded(hub)) == []


# -- the corpus ------------------------------------------------------------------------------


def corpus_env(mailbox: dict[str, str]) -> dict[str, str]:
    return {**mailbox, "TOUCHSTREAM_EMAIL_MAX_BYTES": "140000",
            "TOUCHSTREAM_EMAIL_FAX_GATEWAYS": "fax.example",
            "TOUCHSTREAM_EMAIL_FAX_NUMBERS": "international"}


def corpus_mailbox_env(dovecot: dv.Dovecot, data: Path, batch: int) -> dict[str, str]:
    """A fresh Dovecot user holding the whole corpus, read by an ingester on SQLite at
    ``data`` in batches of ``batch``."""
    user = dovecot.new_user()
    env = corpus_env({
        **store_env("sqlite", data),
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_PORT": str(dovecot.port),
        "TOUCHSTREAM_IMAP_SECURITY": "plain", "TOUCHSTREAM_IMAP_USER": user,
        "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD, "TOUCHSTREAM_IMAP_BATCH": str(batch),
        "TOUCHSTREAM_EMAIL_STAFF": "shop.example",
    })
    dovecot.append(user, *(fixture(n) for n in sorted(EXPECTED)))
    return env


def server_copies(server: dv.Dovecot, user: str) -> dict[int, bytes]:
    """Each message as the server holds it, by UID (what the ingester read)."""
    client = server.client(user)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        return {u: bytes(d[b"BODY[]"]) for u, d in client.fetch(uids, ["BODY.PEEK[]"]).items()}
    finally:
        client.logout()


def assert_accounted(server: dv.Dovecot, env: dict[str, str], names: list[str]) -> None:
    """Every message recorded or quarantined with its raw bytes, as the corpus expects;
    nothing doubled; --verify clean."""
    hub = make_hub(env)
    ing = ingester(env, hub)
    try:
        events = all_events(hub)
        assert_no_duplicate_source_keys(events)
        check = ing.verification(recorded(hub))
        assert check.gaps == []
        copies = server_copies(server, env["TOUCHSTREAM_IMAP_USER"])
        uv = ing.state.checkpoint(ing.account, "INBOX").uidvalidity  # type: ignore[union-attr]
        ledger = ing.state.ledger(ing.account, "INBOX", uv)
        assert sorted(ledger) == sorted(copies) and len(copies) == len(names)
        by_key: dict[str, Any] = {e.source_key: e for e in events if hasattr(e, "source_key")}
        blobs = blobs_of(env)
        for uid, name in zip(sorted(copies), names, strict=True):
            row, expect = ledger[uid], EXPECTED[name]
            event = by_key[row.source_key]
            kind = "quarantine:" + event.reason if row.kind == "quarantine" else row.kind
            detail = getattr(event, "detail", "")
            # A kill between claiming a new sender's address and registering the prospect
            # must not strand the sender (issue 9, item 2): the write model repairs the claim.
            assert not (kind.startswith("quarantine") and "no customer" in detail), (
                f"{name}: sender stranded by a kill between claim and prospect: {detail}")
            assert kind == expect or (expect == "same" and row.kind == "email"), (name, kind, detail)
            if expect == "quarantine:oversized":
                assert copies[uid].startswith(blobs.get(event.header_ref)), name
            elif expect != "same":
                # The source key names the raw bytes (their SHA-256, or for a quarantined
                # message its blob); the blob store keeps them under a keyed address (the
                # event's raw_ref), sealed.
                digest = row.source_key.partition("|msg:")[2][:64]
                ref = getattr(event, "raw_ref", None)
                assert digest in (hashlib.sha256(copies[uid]).hexdigest(), ref), name
                if ref:
                    assert blobs.get(ref) == copies[uid], name
        emails = of_type(events, "EmailRecorded")
        expected_emails = sum(1 for n in names if EXPECTED[n] == "email")
        assert len(emails) == expected_emails  # each names one customer: one event a message
        for e in emails:  # each sender's address leads to the customer its mail is on
            if not e.from_address.endswith("@shop.example"):
                assert hub.find_by_contact("email", e.from_address) == e.originator_id, e.message_id
        assert len(of_type(events, "MessageQuarantined")) == sum(
            1 for n in names if EXPECTED[n].startswith("quarantine"))
        assert not of_type(events, "EmailBounced")
    finally:
        ing.state.close()
        hub.close()


def test_a_corpus_of_odd_and_malformed_mail_is_accounted_for_and_a_rescan_doubles_nothing(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    env = corpus_env(mailbox)
    names = sorted(EXPECTED)
    assert len(names) >= 40
    user = env["TOUCHSTREAM_IMAP_USER"]
    dovecot.append(user, *(fixture(n) for n in names))
    ing = ingester(env, hub)
    (first,) = ing.run_once()
    assert first.seen == len(names)
    assert first.quarantined == sum(1 for n in names if EXPECTED[n].startswith("quarantine"))
    dovecot.set_uidvalidity(user, 777)  # every UID void: a full rescan
    (again,) = ing.run_once()
    assert again.renumbered and (again.seen, again.duplicates) == (len(names), len(names))
    assert (again.recorded, again.quarantined) == (0, 0)
    emails = {e.message_id: e for e in of_type(all_events(hub), "EmailRecorded")}
    assert emails["<c14@example.com>"].body_text == "The text staff must see."  # inline, named
    assert emails["<c15@example.com>"].body_text == "Text behind a boundary that was never declared."
    assert emails["<c16@example.com>"].body_text == "No closing delimiter."
    assert emails["<c21@example.org>"].body_text == "You are invited."
    assert [a["content_type"] for a in emails["<c21@example.org>"].attachments] == ["text/calendar"]
    assert emails["<c12@example.com>"].subject == "Café crème and plain tail"
    ing.state.close()
    assert_accounted(dovecot, env, names)


def _killed_at_random(env: dict[str, str], rng: random.Random, names: list[str]) -> bool:
    """One ingest pass in a forked child (imports already loaded, so a kill lands inside
    the work, not in interpreter start-up), SIGKILLed at a random step or a random time."""
    step = rng.random() < 0.5
    job = {"env": env, "die": rng.choice(["after-record", "after-checkpoint"]) if step else None,
           "at": rng.randint(1, len(names) // 2)}
    child = multiprocessing.get_context("fork").Process(target=imap_ingest.run, args=(job,))
    child.start()
    if not step:
        child.join(rng.uniform(0.05, 2.5))
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(60)
    return child.exitcode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_corpus_survives_sigkill_at_random_moments_twenty_times(
    dovecot: dv.Dovecot, tmp_path: Path
) -> None:
    names = sorted(EXPECTED)
    rng = random.Random(9)
    kills = 0
    for round_ in range(20):
        env = corpus_mailbox_env(dovecot, tmp_path / f"r{round_}", batch=4)
        kills += _killed_at_random(env, rng, names)
        finisher = multiprocessing.get_context("fork").Process(
            target=imap_ingest.run, args=({"env": env, "die": None, "at": 0},))
        finisher.start()
        finisher.join(120)
        assert finisher.exitcode == 0
        assert_accounted(dovecot, env, names)
    assert kills >= 10  # most rounds really were cut short


def test_admins_read_the_quarantine_over_http_and_a_retry_empties_it(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], fixture("20-nesting-60-over-limit.eml"))
    ingester(mailbox, hub).run_once()
    routers = tuple(channel_routers(settings_mod.load(mailbox)))
    with running_api(mailbox, routers) as api:
        listed = api.client.get("/admin/email/quarantine", headers=api.auth("admin"))
        assert listed.status_code == 200
        (item,) = listed.json()
        assert (item["reason"], item["message_id"], item["uid"]) == ("too-deep", None, 1)
        assert api.client.get("/admin/email/quarantine", headers=api.auth("agent")).status_code == 403
        assert api.client.get("/admin/email/quarantine?reason=bogus",
                              headers=api.auth("admin")).status_code == 422
        deeper = {**mailbox, "TOUCHSTREAM_EMAIL_MAX_DEPTH": "100"}
        (retry,) = ingester(deeper, api.hub).retry_quarantined()
        assert retry.released == 1
        assert api.client.get("/admin/email/quarantine", headers=api.auth("admin")).json() == []
        (released,) = api.client.get("/admin/email/quarantine?include_released=true",
                                     headers=api.auth("admin")).json()
        assert released["released_as"].startswith("email|msg:")


def test_a_reply_naming_only_mail_the_hub_sent_joins_that_mails_thread(
    dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub
) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    dovecot.append(user, message(1))  # ada writes in
    ing = ingester(mailbox, hub)
    ing.run_once()
    hub.execute(em.SendEmail(source_key="answer-1", from_address="mia@shop.example",
                            to=["ada@example.com"], subject="Re: Question 1", body_text="Here.",
                            in_reply_to="<m1@example.com>"))
    (queued,) = of_type(all_events(hub), "EmailQueued")
    dovecot.append(user, message(2, headers=f"In-Reply-To: {queued.message_id}"))
    ing.run_once()
    emails = of_type(all_events(hub), "EmailRecorded")
    assert {e.thread_id for e in emails} == {queued.thread_id}


def test_the_corpus_fetched_ahead_by_the_worker_is_recorded_as_when_fetched_in_process(
    dovecot: dv.Dovecot, tmp_path: Path
) -> None:
    """The fetch-ahead worker parses with the ingester's limits and hands over what a fetch
    in the ingester would: every message of the odd corpus (oversized, too deep, broken)
    ends as the same kind under the same source key either way."""
    names = sorted(EXPECTED)
    ledgers = []
    for ahead in (True, False):
        env = corpus_mailbox_env(dovecot, tmp_path / f"ahead-{ahead}", batch=5)
        hub = make_hub(env)
        ing = ingester(env, hub)
        ing.fetch_ahead = ahead
        try:
            (report,) = ing.run_once()
            uv = report.uidvalidity
            # a quarantine's key names its blob, whose address is keyed by the store's secret
            ledgers.append([(r.kind, r.source_key if r.kind != "quarantine" else "")
                            for _, r in sorted(ing.state.ledger(ing.account, "INBOX", uv).items())])
        finally:
            ing.state.close()
            hub.close()
    # (the corpus test above checks each message's outcome, fetched ahead by the worker)
    assert len(ledgers[0]) == len(names) and ledgers[0] == ledgers[1]
