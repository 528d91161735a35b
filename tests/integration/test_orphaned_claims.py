"""A kill between claiming a contact point and registering its prospect strands nobody.

The orphan is written deterministically (the claim alone, as the kill leaves
it); then every import path meets that contact: a CDR row (``import cdr``), a
backfill line (``backfill``) and an IMAP message from a real Dovecot. Each
contact's touchpoints all land on one prospect, and nothing is quarantined.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

from tests.conftest import store_env
from tests.support import dovecot as dv
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub, orphan_claim
from tests.support.mail import message
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester

ROOT = Path(__file__).resolve().parents[2]
CDR_ROW = (
    '"","02079460018","100","from-pstn","""Smith, John"" <02079460018>","SIP/trunk-1",'
    '"SIP/201-2","Queue","support,t,,,300","2026-11-24 09:00:00","2026-11-24 09:00:41",'
    '"2026-11-24 09:05:53",353,312,"ANSWERED","DOCUMENTATION","orphan.cdr.1",""\n'
)
BACKFILL = [
    {"kind": "call", "call_id": "orphan-backfill-1", "from_number": "+44 20 7946 0018",
     "occurred_at": "2026-11-24T11:00:00+00:00"},
    {"kind": "email", "message_id": "<orphan-backfill@example.com>",
     "from_address": "Ada@Example.com", "occurred_at": "2026-11-24T11:05:00+00:00"},
]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env})


def test_cdr_backfill_and_imap_all_record_an_orphaned_contact_on_one_prospect(
    dovecot: dv.Dovecot, tmp_path: Path
) -> None:
    user = dovecot.new_user()
    env = store_env("sqlite", tmp_path / "data")
    env.update({
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_PORT": str(dovecot.port),
        "TOUCHSTREAM_IMAP_SECURITY": "plain", "TOUCHSTREAM_IMAP_USER": user,
        "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD, "TOUCHSTREAM_IMAP_TIMEOUT": "5",
        "TOUCHSTREAM_EMAIL_STAFF": "shop.example",
    })
    hub = make_hub(env)
    try:
        phone = orphan_claim(hub, "phone", "+442079460018")
        mail = orphan_claim(hub, "email", "ada@example.com")
    finally:
        hub.close()

    cdr = tmp_path / "Master.csv"
    cdr.write_text(CDR_ROW)
    imported = cli(env, "import", "cdr", str(cdr), "--timezone", "Europe/London")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["recorded"] == 1
    lines = tmp_path / "history.jsonl"
    lines.write_text("".join(json.dumps(line) + "\n" for line in BACKFILL))
    backfilled = cli(env, "backfill", str(lines))
    assert backfilled.returncode == 0, backfilled.stderr
    dovecot.append(user, message(1, sender="ada@example.com"))

    hub = make_hub(env)
    try:
        reports = build_ingester(Dependencies(settings_mod.load(env), hub=hub)).run_once()
        assert [r.recorded for r in reports] == [1]
        calls = Counter(type(e).__name__ for e in hub.stream(phone))
        emails = Counter(type(e).__name__ for e in hub.stream(mail))
        assert (calls["Registered"], calls["CallLogged"]) == (1, 2)
        assert (emails["Registered"], emails["EmailRecorded"]) == (1, 2)
        assert hub.find_by_contact("phone", "020 7946 0018") == phone
        assert hub.find_by_contact("email", "ada@example.com") == mail
    finally:
        hub.close()
    assert not (tmp_path / "data" / "quarantine" / "cdr.jsonl").exists()
