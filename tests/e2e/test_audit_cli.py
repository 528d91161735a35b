"""``touchstream audit`` as a subprocess, checked by the standalone verifier run on its own.

The verifier is copied to a folder outside the project and run with ``-I``
(isolated: no project on the path), as an auditor would run it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store
from touchstream.settings import sqlite_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "replays" / "audit" / "standalone_verify.py"


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, {**os.environ, **self.env})

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(store_env("sqlite", tmp_path / "data"))
    cli.ok("demo", "--customers", "3", "--years", "1")
    return cli


@pytest.fixture
def auditor(tmp_path: Path) -> Path:
    """A folder with only the verifier in it, outside the project."""
    home = tmp_path / "auditor"
    home.mkdir()
    shutil.copy(VERIFIER, home / "verify.py")
    return home


def check(auditor: Path, what: str, doc: str) -> subprocess.CompletedProcess[str]:
    (auditor / "input.json").write_text(doc)
    return subprocess.run([sys.executable, "-I", str(auditor / "verify.py"), what,
                           "--public-key", str(auditor / "public.pem"),
                           str(auditor / "input.json")],
                          check=False, cwd=auditor, capture_output=True, text=True, timeout=60)


def test_an_auditor_checks_seals_and_proofs_with_the_standalone_verifier(
        cli: Cli, auditor: Path) -> None:
    (auditor / "public.pem").write_text(cli.ok("audit", "public-key"))
    first = json.loads(cli.ok("audit", "seal"))
    cli.ok("demo", "--customers", "5", "--years", "1")  # same seed: two more customers
    second = json.loads(cli.ok("audit", "seal"))
    assert (first["seal"], second["seal"]) == (1, 2)
    assert second["tree_size"] > first["tree_size"]

    seals = cli.ok("audit", "seals", "--jsonl")
    assert [json.loads(line)["seal"] for line in seals.splitlines()] == [1, 2]
    done = check(auditor, "seals", seals)
    assert done.returncode == 0 and done.stdout.startswith("OK: 2 seals"), done.stdout

    proof = cli.ok("audit", "prove", "--position", "5")
    done = check(auditor, "inclusion", proof)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(proof)
    event_id = _event_id_of(cli, doc["record"]["originator_id"],
                            doc["record"]["originator_version"])
    assert json.loads(cli.ok("audit", "prove", event_id))["leaf_index"] == doc["leaf_index"]

    consistency = cli.ok("audit", "consistency", "1", "2")
    done = check(auditor, "consistency", consistency)
    assert done.returncode == 0 and "extends seal 1" in done.stdout, done.stdout

    # any single changed byte in what the auditor was given fails
    doc["record"]["topic"] = doc["record"]["topic"] + "x"
    done = check(auditor, "inclusion", json.dumps(doc))
    assert done.returncode == 1 and done.stdout.startswith("INVALID"), done.stdout
    forged = json.loads(consistency)
    forged["second"]["tree_size"] += 1
    done = check(auditor, "consistency", json.dumps(forged))
    assert done.returncode == 1 and "signature" in done.stdout, done.stdout
    lines = seals.splitlines()
    done = check(auditor, "seals", lines[1] + "\n")  # seal 1 withheld: still a valid seal
    assert done.returncode == 0
    done = check(auditor, "seals", "\n".join(reversed(lines)))
    assert done.returncode == 1 and "missing" in done.stdout, done.stdout


def _event_id_of(cli: Cli, customer_id: str, version: int) -> str:
    events = [json.loads(line) for line in cli.ok("events", customer_id).splitlines()]
    (event,) = [e for e in events if e["originator_version"] == version]
    return str(event["event_id"])


def test_verify_reports_a_changed_event_with_exit_1_and_its_position(cli: Cli,
                                                                      tmp_path: Path) -> None:
    cli.ok("audit", "seal")
    done = cli("audit", "verify")
    assert done.returncode == 0 and done.stdout.startswith("VALID"), done.stdout + done.stderr
    path = sqlite_path(settings_mod.load(cli.env).event_store)
    with sqlite3.connect(path) as conn:
        state = conn.execute("SELECT state FROM stored_events WHERE rowid = 9").fetchone()[0]
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 9",
                     (state[:-1] + bytes([state[-1] ^ 1]),))
    done = cli("audit", "verify", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert not report["ok"]
    assert {"kind": "changed", "position": 9} in [
        {"kind": f["kind"], "position": f["position"]} for f in report["findings"]]


def test_the_seal_key_is_private_and_a_key_open_to_others_is_refused(cli: Cli) -> None:
    cli.ok("audit", "seal")
    key = Path(cli.env["TOUCHSTREAM_DATA"]) / "audit-seal-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)
    done = cli("audit", "seal")
    assert done.returncode == 2 and "chmod 600" in done.stderr, done.stderr


def test_verify_with_a_public_key_from_elsewhere_names_every_seal_signed_by_another(
        cli: Cli, tmp_path: Path) -> None:
    from replays.audit.keys import SealKey

    cli.ok("audit", "seal")
    other = tmp_path / "other.pem"
    other.write_text(SealKey.generate().public_pem())
    done = cli("audit", "verify", "--public-key", str(other))
    assert done.returncode == 1
    assert "seal-signature: seal 1" in done.stdout, done.stdout


def test_bad_input_gives_a_clear_message_and_exit_code(cli: Cli) -> None:
    done = cli("audit", "prove", "--position", "3")
    assert done.returncode == 4 and "no seal yet" in done.stderr
    cli.ok("audit", "seal")
    done = cli("audit", "consistency", "1", "7")
    assert done.returncode == 4 and "no seal 7" in done.stderr
    done = cli("audit", "prove", "not-an-id")
    assert done.returncode == 2 and "not an event id" in done.stderr
    done = cli("audit", "verify", "--from-seal", "9")
    assert done.returncode == 4 and "no seal 9" in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_seals_on_its_interval_and_at_shutdown(tmp_path: Path) -> None:
    env = {**store_env("sqlite", tmp_path / "data"), "TOUCHSTREAM_AUDIT_SEAL_INTERVAL": "1"}
    keys = open_key_store(settings_mod.load(env))
    _, token = keys.create("adapter", name="pbx")
    keys.close()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "touchstream.cli", "serve", "--port",
                             str(port)], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = Cli(env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200)
        _wait(lambda: _has_a_seal(env))  # the CLI reads the seals once the server stops
        headers = {"Authorization": f"Bearer {token}"}
        done = httpx.post(f"{url}/commands/register-customer", headers=headers, json={
            "name": "Ada", "source_key": "reg-ada",
            "contact_points": [{"kind": "email", "value": "ada@example.com"}]})
        assert done.status_code == 201, done.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    seals = [json.loads(line) for line in cli.ok("audit", "seals", "--jsonl").splitlines()]
    assert seals[-1]["tree_size"] >= 1  # the shutdown seal covers the registration
    assert cli("audit", "verify").returncode == 0


def _has_a_seal(env: dict[str, str]) -> bool:
    """Whether the server has sealed yet, read from its read store directly: a CLI start per
    poll cost about 2 s of CPU, so the wait ran one process after another."""
    path = sqlite_path(settings_mod.load(env).read_store)
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT count(*) FROM audit_seals").fetchone()[0] > 0
    except sqlite3.OperationalError:  # no store or no seal table yet
        return False


def _wait(ready: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (httpx.TransportError, AssertionError):
            pass
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.1)
