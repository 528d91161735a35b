"""The staff-facing read commands (``timeline``, ``customer show``) and output into pipes.

Reads go through the read models (caught up by the command itself), and any
output piped into a reader that stops early (``head``, ``grep -m1``) ends
quietly: no traceback, the documented exit code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from commands import messages as m
from commands.bulk import BulkImporter
from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub
from touchstream.cli.exits import Exit

ROOT = Path(__file__).resolve().parents[2]
CALLS = 1500  # ~1 MB of `events` output: far more than a pipe buffer


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # A fixed width: tables are cut to the terminal's, and a test worker's may differ.
    return run_cli(args, {**os.environ, "COLUMNS": "160", **env}, timeout=180)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A customer with many calls, an email and an internal note."""
    env = store_env("sqlite", tmp_path_factory.mktemp("reading") / "data")
    hub = make_hub(env)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        created = hub.execute(m.RegisterCustomer(
            name="Grace Hopper", company="Navy", actor="test", occurred_at=start,
            contact_points=[m.ContactPointIn(kind="phone", value="+44 131 496 0101"),
                            m.ContactPointIn(kind="email", value="grace@example.com")]))
        calls = [m.LogCall(call_id=f"c{i}", from_number="0131 496 0101", queue="support",
                           duration_s=60, summary=f"call number {i}",
                           occurred_at=start + timedelta(minutes=i), actor="pbx")
                 for i in range(CALLS)]
        BulkImporter(hub).import_history(calls)
        hub.execute(m.RecordEmail(message_id="<g1@example.com>", from_address="grace@example.com",
                                  subject="Compiler question", body_text="hello",
                                  occurred_at=start + timedelta(days=30), actor="imap"))
        hub.execute(m.AddNote(customer_id=created.customer_id, text="Prefers mornings.",
                              occurred_at=start + timedelta(days=31), actor="agent:mia"))
    finally:
        hub.close()
    return env, str(created.customer_id)


def test_timeline_prints_the_newest_entries_as_a_table(busy: tuple[dict[str, str], str]) -> None:
    env, cid = busy
    done = run(env, "timeline", cid, "--limit", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "(UTC)", "CHANNEL", "DIR", "KIND", "BY", "WHAT"]
    assert "[internal] Prefers mornings." in lines[1] and "2026-02-01" in lines[1]
    assert "Compiler question" in lines[2] and "email" in lines[2]
    assert "call number 1499" in lines[3]
    assert "--all" in lines[4], "a cut-off listing says how to see more"
    assert done.stderr == "", "no progress bar when stderr is not a terminal"


def test_timeline_json_pages_through_everything(busy: tuple[dict[str, str], str]) -> None:
    env, cid = busy
    done = run(env, "timeline", cid, "--all", "--json", "--channel", "phone")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["summary"] for r in rows] == [f"call number {i}" for i in reversed(range(CALLS))]
    assert {r["kind"] for r in rows} == {"call"}


def test_customer_show_reads_the_summary(busy: tuple[dict[str, str], str]) -> None:
    env, cid = busy
    text = run(env, "customer", "show", cid)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Grace Hopper\n")
    assert "+441314960101" in text.stdout and "grace@example.com" in text.stdout
    assert any(line.split()[:2] == ["phone", str(CALLS)] for line in text.stdout.splitlines())
    shown = json.loads(run(env, "customer", "show", cid, "--json").stdout)
    assert shown["channels"]["phone"]["touches"] == CALLS
    assert shown["notes"] == {"shared": 0, "internal": 1}
    assert shown["company"] == "Navy"


def test_a_merged_customer_shows_its_survivor(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    hub = make_hub(env)
    try:
        a = hub.execute(m.RegisterCustomer(name="Ada", actor="t")).customer_id
        b = hub.execute(m.RegisterCustomer(name="Ada L.", actor="t")).customer_id
        hub.execute(m.MergeCustomers(source_id=b, target_id=a, actor="t"))
    finally:
        hub.close()
    done = run(env, "customer", "show", str(b))
    assert done.returncode == 0, done.stderr
    first, _, rest = done.stdout.partition("\n")
    assert first == f"customer {b} was merged into {a}: showing {a}"
    assert rest.startswith("Ada\n") and re.search(rf"merged from +{b}\n", rest)


@pytest.mark.parametrize(("args", "code", "words"), [
    (("timeline", "nope"), Exit.USAGE, "not a customer id"),
    (("timeline", "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"), Exit.NOT_FOUND, "no customer"),
    (("customer", "show", "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "--json"), Exit.NOT_FOUND,
     "no customer"),
    (("timeline", "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "--limit", "0"), Exit.USAGE,
     "--limit"),
])
def test_read_commands_refuse_bad_or_unknown_ids(tmp_path: Path, args: tuple[str, ...],
                                                 code: Exit, words: str) -> None:
    done = run(store_env("sqlite", tmp_path / "data"), *args)
    assert done.returncode == code and words in done.stderr, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [
    "touchstream events {cid} | head -1",
    "touchstream events {cid} | grep -m1 CallLogged",
    "touchstream timeline {cid} --all | head -2",
    "touchstream timeline {cid} --all --json | grep -m1 call",
])
def test_output_into_a_reader_that_stops_early_ends_quietly(
        busy: tuple[dict[str, str], str], tmp_path: Path, command: str) -> None:
    env, cid = busy
    bin_dir = tmp_path / "bin"  # `touchstream` on the PATH, as the README puts it
    bin_dir.mkdir()
    (bin_dir / "touchstream").write_text(
        f"#!/bin/sh\nexec {sys.executable} -m touchstream.cli \"$@\"\n")
    (bin_dir / "touchstream").chmod(0o755)
    script = command.format(cid=cid) + '\necho "status ${PIPESTATUS[0]}" >&2\n'
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
                          timeout=180, check=False)
    assert done.stdout.strip(), "the reader got its first line"
    assert done.stderr.strip() == f"status {int(Exit.PIPE_CLOSED)}", done.stderr
