"""The CLI's reads of a customer's data are on record in the read audit before they print.

Each reading command (``timeline``, ``customer show``, ``events``, ``calls``,
``customer export``), run as an operator runs it, appends exactly one access record,
read back with ``touchstream audit access --customer ID``: key ``cli:<OS user>``,
role ``cli``, the command line with personal values withheld, the host name. When
the access log refuses the record the command prints nothing, writes no file and
exits 5.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from commands import messages as m
from projections.store import ReadStore
from replays.audit import access as access_log
from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.cli.exits import Exit

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Hopper"  # a search word: personal, never in a recorded route

# (arguments, with {id} and {out} filled in; the route the access record names)
READS = [
    (("timeline", "{id}"), "touchstream timeline {customer} --limit 20"),
    (("timeline", "{id}", "--all", "--search", SECRET, "--json"),
     "touchstream timeline {customer} --all --search … --json"),
    (("customer", "show", "{id}"), "touchstream customer show {customer}"),
    (("events", "{id}"), "touchstream events {customer}"),
    (("calls", "{id}"), "touchstream calls {customer}"),
    (("customer", "export", "{id}", "--out", "{out}"),
     "touchstream customer export {customer} --out …"),
]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env}, timeout=180)


def seeded(env: dict[str, str]) -> dict[str, str]:
    """Grace (a call, an email, a note) and Grace's duplicate, merged into her."""
    hub = make_hub(env)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    try:
        grace = hub.execute(m.RegisterCustomer(
            name="Grace Hopper", actor="test", occurred_at=at,
            contact_points=[m.ContactPointIn(kind="phone", value="+44 131 496 0101"),
                            m.ContactPointIn(kind="email", value="grace@example.com")]))
        twin = hub.execute(m.RegisterCustomer(name="G. Hopper", actor="test", occurred_at=at))
        hub.execute(m.LogCall(call_id="c1", from_number="0131 496 0101", queue="support",
                              duration_s=60, summary="compiler question", occurred_at=at,
                              actor="pbx"))
        hub.execute(m.AddNote(customer_id=grace.customer_id, text="Prefers mornings.",
                              occurred_at=at, actor="agent:mia"))
        hub.execute(m.MergeCustomers(source_id=twin.customer_id, target_id=grace.customer_id,
                                     actor="test"))
    finally:
        hub.close()
    return {"grace": str(grace.customer_id), "twin": str(twin.customer_id)}


def filled(args: tuple[str, ...], customer: str, out: Path) -> list[str]:
    return [a.format(id=customer, out=out) for a in args]


def access_of(env: dict[str, str], customer: str) -> list[dict[str, str]]:
    done = run(env, "audit", "access", "--customer", customer, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_each_cli_read_appends_exactly_one_access_record(kind: str, tmp_path: Path) -> None:
    env = store_env(kind, tmp_path / "data")
    grace = seeded(env)["grace"]
    for k, (args, _) in enumerate(READS):
        done = run(env, *filled(args, grace, tmp_path / f"export-{k}.zip"))
        assert done.returncode == 0, (args, done.stderr)
        assert done.stdout.strip(), args
    found = access_of(env, grace)
    assert [r["route"] for r in found] == [route for _, route in READS]
    assert {(r["key_id"], r["role"], r["customer_id"], r["client"]) for r in found} == {
        (f"cli:{getpass.getuser()}", "cli", grace, socket.gethostname())}
    assert len({r["request_id"] for r in found}) == len(READS)
    assert not any(SECRET in r["route"] or "export-" in r["route"] for r in found)
    by_key = run(env, "audit", "access", "--key", f"cli:{getpass.getuser()}", "--json")
    assert by_key.returncode == 0 and len(by_key.stdout.splitlines()) == len(READS)
    db = ReadStore(settings_mod.load(env).read_store).connect()
    try:
        assert access_log.verify_chain(db) == []
    finally:
        db.close()


def test_a_merged_away_id_records_it_and_its_root_and_an_unknown_id_records_nothing(
        tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    ids = seeded(env)
    done = run(env, "customer", "show", ids["twin"])
    assert done.returncode == 0 and f"merged into {ids['grace']}" in done.stdout
    assert [r["customer_id"] for r in access_of(env, ids["twin"])] == [ids["twin"]]
    assert [r["customer_id"] for r in access_of(env, ids["grace"])] == [ids["grace"]]
    unknown = "00000000-0000-0000-0000-000000000007"
    for args, _ in READS:
        done = run(env, *filled(args, unknown, tmp_path / "unknown.zip"))
        assert done.returncode == Exit.NOT_FOUND, (args, done.stderr)
    assert access_of(env, unknown) == []
    assert not (tmp_path / "unknown.zip").exists()


def test_a_read_the_access_log_refuses_prints_nothing_and_exits_5(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    grace = seeded(env)["grace"]
    db = ReadStore(settings_mod.load(env).read_store).connect()
    try:
        access_log.ensure_schema(db)
        db.execute("CREATE TRIGGER audit.audit_down BEFORE INSERT ON audit_access "
                   "BEGIN SELECT RAISE(ABORT, 'audit store down'); END")
    finally:
        db.close()
    exports = tmp_path / "exports"
    exports.mkdir()
    for args, _ in READS:
        done = run(env, *filled(args, grace, exports / "grace.zip"))
        assert done.returncode == Exit.STORE, (args, done.stderr)
        assert done.stdout == "", args
        assert "access log" in done.stderr and "nothing was shown" in done.stderr
    assert list(exports.iterdir()) == []  # no zip, no temporary file left behind
    assert access_of(env, grace) == []
