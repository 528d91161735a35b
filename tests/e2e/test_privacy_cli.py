"""``touchstream customer erase|export`` and ``keys rotate-master`` as an operator runs them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import store_env
from tests.e2e.test_cli import Cli

CANARY = "Qx9canaryPr"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(store_env("sqlite", tmp_path / "data"))


def test_export_then_erase_then_export_again(cli: Cli, tmp_path: Path) -> None:
    (created,) = cli.ok("customer", "create", "--name", f"Ann {CANARY}",
                        "--email", "ann@example.com", "--phone", "+44 20 7946 0321")
    cid = created["customer_id"]
    cli.ok("customer", "note", cid, f"prefers {CANARY} mornings")
    out = tmp_path / "ann.zip"
    (report,) = cli.ok("customer", "export", cid, "--out", str(out))
    assert set(report["parts"]) >= {"events.jsonl", "summary.json", "timeline.jsonl"}
    with zipfile.ZipFile(out) as zf:
        assert CANARY in zf.read("events.jsonl").decode()
        assert json.loads(zf.read("manifest.json"))["customer_id"] == cid

    (erased,) = cli.ok("customer", "erase", cid, "--reason", "DSR-2026-117")
    assert erased["erased"] == [cid] and erased["duplicate"] is False
    (again,) = cli.ok("customer", "erase", cid, "--reason", "DSR-2026-117")
    assert again["duplicate"] is True
    unknown = cli("customer", "erase", "00000000-0000-0000-0000-000000000007", "--reason", "x")
    assert unknown.returncode == 4 and "no customer" in unknown.stderr

    cli.ok("customer", "export", cid, "--out", str(out))
    with zipfile.ZipFile(out) as zf:
        assert CANARY not in zf.read("events.jsonl").decode()
        assert CANARY not in zf.read("timeline.jsonl").decode()
    shown = cli("customer", "show", cid, "--json")
    assert shown.returncode == 0 and CANARY not in shown.stdout
    data = Path(cli.env["TOUCHSTREAM_DATA"])
    for path in data.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def test_rotate_master_rewraps_and_everything_still_reads(cli: Cli) -> None:
    (created,) = cli.ok("customer", "create", "--name", f"Bo {CANARY}", "--email", "bo@example.com")
    key_file = Path(cli.env["TOUCHSTREAM_DATA"]) / "master.key"
    before = key_file.read_text()
    (rotated,) = cli.ok("keys", "rotate-master")
    assert rotated["rewrapped"] >= 2 and key_file.read_text() != before
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    shown = cli("customer", "show", created["customer_id"], "--json")
    assert shown.returncode == 0 and f"Bo {CANARY}" in shown.stdout


def test_an_erasure_keeps_the_sealed_log_valid(cli: Cli) -> None:
    (created,) = cli.ok("customer", "create", "--name", f"Cy {CANARY}", "--email", "cy@example.com")
    cli.ok("customer", "note", created["customer_id"], f"likes {CANARY}")
    cli.ok("audit", "seal")
    cli.ok("customer", "erase", created["customer_id"], "--reason", "DSR-7")
    cli.ok("audit", "seal")  # the erasure event itself is sealed too
    verified = cli("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_tampered_event_is_a_damaged_store_for_the_cli_never_bad_input(cli: Cli) -> None:
    import json as _json
    import sqlite3

    (created,) = cli.ok("customer", "create", "--name", "Di Flip", "--email", "di@example.com")
    events = Path(cli.env["TOUCHSTREAM_DATA"]) / "events.db"
    with sqlite3.connect(events) as conn:
        table = next(t for (t,) in conn.execute("SELECT name FROM sqlite_master "
                                                "WHERE type='table' AND name LIKE '%events'"))
        rowid, state = conn.execute(f"SELECT rowid, state FROM {table} WHERE topic LIKE "
                                    "'%Registered'").fetchone()
        doc = _json.loads(state)
        sealed = bytearray(doc["_sealed"].encode())
        sealed[10] = ord("A") if sealed[10] != ord("A") else ord("B")  # one flipped byte
        doc["_sealed"] = sealed.decode()
        conn.execute(f"UPDATE {table} SET state=? WHERE rowid=?",
                     (_json.dumps(doc).encode(), rowid))
    done = cli("events", created["customer_id"])
    assert done.returncode == 7, (done.returncode, done.stderr)
    assert "damaged" in done.stderr and "failed authentication" in done.stderr


def test_a_data_folder_written_before_encryption_is_refused_with_exit_2(cli: Cli) -> None:
    from commands import messages as m
    from touchstream import settings as settings_mod
    from touchstream.wiring import build_hub

    # As a version before per-customer encryption wrote it: personal data in clear.
    old = build_hub(settings_mod.load(cli.env), encrypt=False)
    try:
        old.execute(m.RegisterCustomer(name=f"Old {CANARY}", source_key="old:1"))
    finally:
        old.close()
    refused = cli("customer", "create", "--name", "New")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "written before per-customer encryption" in refused.stderr
    assert "Start with an empty data folder" in refused.stderr
