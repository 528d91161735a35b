"""The ``touchstream`` CLI as a subprocess: bad input gives a message, a non-zero exit,
and leaves the store as it was."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(args, {**os.environ, **self.env}, stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> Any:
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def last_position(self) -> int | None:
        hub = make_hub(self.env)
        try:
            return hub.recorder.max_notification_id()
        finally:
            hub.close()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(store_env("sqlite", tmp_path / "data"))


def fails(cli: Cli, code: int, words: str, *args: str, stdin: str | None = None) -> None:
    before = cli.last_position()
    done = cli(*args, stdin=stdin)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert cli.last_position() == before, "a failed command wrote to the store"


def test_record_call_and_show_events(cli: Cli) -> None:
    (created,) = cli.ok("customer", "create", "--name", "Ada", "--phone", "+44 20 7946 0018")
    (call,) = cli.ok("record", "call", "--call-id", "CA9", "--from-number", "020 7946 0018",
                     "--ivr-choices", "1", "--ivr-choices", "3")
    assert call["customer_id"] == created["customer_id"]
    events = cli.ok("events", created["customer_id"])
    assert [e["type"] for e in events][-1] == "Customer.CallLogged"
    assert events[-1]["ivr_choices"] == ["1", "3"]


@pytest.mark.parametrize(("args", "stdin", "code", "words"), [
    (("record", "call", "--from-number", "+44 20 7946 0018"), None, 2, "call_id"),
    (("record", "call", "--call-id", "x", "--outcome", "great"), None, 2, "outcome"),
    (("record", "email", "--json"), "{not json", 2, "not valid JSON"),
    (("record", "email", "--json"), "[1, 2]", 2, "one JSON object"),
    (("record", "visit", "--visit-id", "v", "--visit-kind", "field", "--staff", "s"), None, 4,
     "customer_id"),
    # An unparseable or impossible contact point is invalid input (2), not a conflict.
    (("record", "fax", "--fax-id", "f", "--from-number", "banana"), None, 2,
     "not a phone number"),
    (("customer", "create", "--name", "Bob", "--phone", "+1 555 0100"), None, 2,
     "not a valid phone number"),
    (("customer", "create", "--name", "Bob", "--email", "not-an-email"), None, 2,
     "not an email address"),
    (("customer", "show", "nope"), None, 2, "not a customer id"),
    (("customer", "show", "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"), None, 4, "no customer"),
    (("events", "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"), None, 4, "no customer"),
    (("demo", "--customers", "0"), None, 2, "--customers"),
    (("demo", "--until", "2020-01-01T00:00:00"), None, 2, "timezone"),
])
def test_bad_input_exits_non_zero_with_a_message_and_writes_nothing(
    cli: Cli, args: tuple[str, ...], stdin: str | None, code: int, words: str
) -> None:
    fails(cli, code, words, *args, stdin=stdin)


def test_second_customer_with_a_taken_email_is_refused_whole(cli: Cli) -> None:
    cli.ok("customer", "create", "--name", "Ada", "--email", "ada@example.com")
    done = cli("customer", "create", "--name", "Eve", "--email", "eve@example.com",
               "--email", "ADA@example.com")
    assert done.returncode == 3 and "already belongs" in done.stderr, done.stderr
    found = cli("customer", "find", "--email", "eve@example.com")
    assert found.returncode == 4, "the refused customer exists after all"
    # Eve's own address was not left claimed by the refused attempt: a corrected
    # retry (a new command, so a new source key) gets it at once.
    (eve,) = cli.ok("customer", "create", "--name", "Eve", "--email", "eve@example.com")
    (owner,) = cli.ok("customer", "find", "--email", "eve@example.com")
    assert owner["customer_id"] == eve["customer_id"]


def test_demo_seeds_then_records_nothing_on_a_rerun(cli: Cli) -> None:
    (first,) = cli.ok("demo", "--customers", "3", "--years", "1", "--seed", "5")
    assert first["recorded_events"] > 0 and first["duplicates"] == 0
    (again,) = cli.ok("demo", "--customers", "3", "--years", "1", "--seed", "5")
    assert again["recorded_events"] == 0 and again["duplicates"] == again["commands"]


def test_keys_create_list_revoke(cli: Cli) -> None:
    (key,) = cli.ok("keys", "create", "--role", "partner", "--partner", "p-7", "--name", "acme")
    assert key["token"].startswith("tsk_") and key["partner_id"] == "p-7"
    listed = cli.ok("keys", "list")
    assert [k["id"] for k in listed] == [key["id"]]
    assert key["token"] not in json.dumps(listed) and listed[0]["active"] is True
    (revoked,) = cli.ok("keys", "revoke", key["id"])
    assert revoked["revoked_at"]
    assert cli.ok("keys", "list")[0]["active"] is False


def test_keys_create_if_none_makes_one_admin_key_only(cli: Cli) -> None:
    (key,) = cli.ok("keys", "create", "--role", "admin", "--if-none")
    assert key["role"] == "admin"
    done = cli("keys", "create", "--role", "admin", "--if-none")
    assert done.returncode == 0 and done.stdout == "" and "exists already" in done.stderr
    assert len(cli.ok("keys", "list")) == 1


@pytest.mark.parametrize(("args", "words"), [
    (("keys", "create", "--role", "boss"), "unknown role"),
    (("keys", "create", "--role", "partner"), "needs --partner"),
    (("keys", "create", "--role", "agent", "--partner", "p-1"), "only partner keys"),
])
def test_bad_key_commands_exit_2_and_create_nothing(cli: Cli, args: tuple[str, ...],
                                                     words: str) -> None:
    done = cli(*args)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert cli.ok("keys", "list") == []


def test_revoking_an_unknown_key_exits_not_found(cli: Cli) -> None:
    done = cli("keys", "revoke", "key_000000000000")
    assert done.returncode == 4 and "no API key" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_serve_rejects_a_bad_port(cli: Cli) -> None:
    done = cli("serve", "--port", "70000")
    assert done.returncode == 2 and "--port" in done.stderr


def test_calls_combine_a_logged_call_with_its_later_steps(cli: Cli) -> None:
    (created,) = cli.ok("customer", "create", "--name", "Ada", "--phone", "+44 20 7946 0018")
    cid = created["customer_id"]
    cli.ok("record", "call", "--customer-id", cid, "--call-id", "CA7", "--agent", "mia",
           "--duration-s", "312", "--occurred-at", "2026-11-24T09:30:00+00:00")
    cli.ok("record", "call-step", "--customer-id", cid, "--call-id", "CA7", "--step", "queued",
           "--sequence", "2", "--occurred-at", "2026-11-24T09:31:00+00:00")
    (summary,) = cli.ok("calls", cid)
    assert (summary["call_id"], summary["state"], summary["outcome"], summary["agent"],
            summary["duration_s"], summary["logged"]) == ("CA7", "ended", "answered", "mia",
                                                          312, True)


def test_void_and_correct_touchpoints_from_the_cli(cli: Cli) -> None:
    (created,) = cli.ok("customer", "create", "--name", "Ada", "--phone", "+44 20 7946 0018")
    cid = created["customer_id"]
    (call,) = cli.ok("record", "call", "--customer-id", cid, "--call-id", "CA8",
                     "--occurred-at", "2026-11-24T09:30:00+00:00")
    event = call["event_ids"][0]
    (fixed,) = cli.ok("customer", "correct-touchpoint", cid, event, "--reason", "wrong day",
                      "--occurred-at", "2026-11-23T09:30:00+00:00", "--set", "agent=mia")
    (voided,) = cli.ok("customer", "void-touchpoint", cid, event, "--reason", "test call")
    (again,) = cli.ok("customer", "void-touchpoint", cid, event, "--reason", "test call")
    assert not fixed["duplicate"] and not voided["duplicate"] and again["duplicate"]
    types = [e["type"] for e in cli.ok("events", cid)]
    assert types[-2:] == ["Customer.TouchpointCorrected", "Customer.TouchpointVoided"]
    assert cli.ok("calls", cid) == []  # a voided call is not summarised
    fails(cli, 4, "no event", "customer", "void-touchpoint", cid,
          "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "--reason", "r")
    fails(cli, 2, "--set takes FIELD=VALUE", "customer", "correct-touchpoint", cid, event,
          "--reason", "r", "--set", "agent")
    fails(cli, 2, "RFC 3339", "customer", "correct-touchpoint", cid, event, "--reason", "r",
          "--occurred-at", "1700000000")
