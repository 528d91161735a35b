"""``touchstream email queue|send|outbox`` end to end, against aiosmtpd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import store_env
from tests.integration.test_email_smtp import Relay
from tests.support.cli_fork import run_cli
from tests.support.dovecot import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_queue_then_send_delivers_once_and_the_outbox_shows_it_sent(
    relay: tuple[Relay, int], tmp_path: Path
) -> None:
    handler, port = relay
    env = {**os.environ, **store_env("sqlite", tmp_path / "data"),
           "TOUCHSTREAM_SMTP_HOST": "127.0.0.1", "TOUCHSTREAM_SMTP_PORT": str(port),
           "TOUCHSTREAM_SMTP_SECURITY": "plain"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["email", *args], env, timeout=60)

    queue = ["queue", "--source-key", "ticket-7-reply", "--from", "mia@shop.example",
             "--to", "ada@example.com", "--subject", "Re: boiler", "--body", "On Tuesday."]
    first, again = cli(*queue), cli(*queue)
    assert first.returncode == 0, first.stderr
    assert json.loads(again.stdout)["duplicate"] is True
    sent = cli("send")
    assert json.loads(sent.stdout) == {"sent": 1, "failed": 0, "unknown": 0}
    assert json.loads(cli("send").stdout) == {"sent": 0, "failed": 0, "unknown": 0}
    (row,) = [json.loads(line) for line in cli("outbox", "--rebuild").stdout.splitlines()]
    assert row["status"] == "sent" and row["subject"] == "Re: boiler"
    assert len(handler.received) == 1


def test_queue_with_a_bad_address_is_refused_with_a_reason(tmp_path: Path) -> None:
    env = {**os.environ, **store_env("sqlite", tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-m", "touchstream.cli", "email", "queue", "--source-key", "k",
         "--from", "mia@shop.example", "--to", "not-an-address", "--body", "x"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0 and "not an email address" in out.stderr


def test_bench_email_json_has_its_figures_and_ratio(tmp_path: Path) -> None:
    from tests.support.dovecot import available

    if (reason := available()) is not None:
        pytest.skip(reason)
    env = {**os.environ, "TOUCHSTREAM_DATA": str(tmp_path / "user-data")}
    done = subprocess.run([sys.executable, "-m", "touchstream.cli", "bench", "email", "--json",
                           "--messages", "20"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["scenario"], report["store"]) == ("email", "sqlite")
    assert report["figures"]["recorded_messages"] == 20
    assert report["ratios"]["ingest_vs_raw_fetch"] > 0
    assert report["figures"]["ingest_cpu_ms_per_msg"] > 0
    assert report["figures"]["fetch_ahead_cpu_ms_per_msg"] >= 0  # 20 messages: one batch
    assert report["ratios"]["parse_floor_vs_raw_fetch"] > 0
    assert report["figures"]["parse_floor_msgs_per_s"] > 0
    # Dovecot answered the ingest's fetches; no PostgreSQL on SQLite
    assert report["figures"]["dovecot_cpu_ms_per_msg"] >= 0
    assert report["figures"]["postgres_cpu_ms_per_msg"] == 0
    assert report["figures"]["all_cpu_ms_per_msg"] >= report["figures"]["ingest_cpu_ms_per_msg"]
    assert report["ratios"]["cpu_floor_vs_raw_fetch"] > 0
    assert not (tmp_path / "user-data").exists()  # fresh temporary stores only
    bad = subprocess.run([sys.executable, "-m", "touchstream.cli", "bench", "email",
                          "--messages", "0"], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "--messages" in bad.stderr
