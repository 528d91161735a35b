"""``touchstream marketing``: figures as a table, JSON and CSV; commands; documented exit codes."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import store_env
from tests.support.hubs import make_hub
from tests.support.marketing import seed_marketing, seed_marketing_sales
from touchstream.cli import main
from touchstream.cli.exits import Exit


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """The CLI in this process (its start-up is most of a subprocess's cost on a busy box)."""
    def invoke(env: dict[str, str], *args: str, input_text: str | None = None) -> Done:
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            patch.setattr(sys, "stdin", io.StringIO(input_text or ""))
            capsys.readouterr()
            code = main(list(args))
            out, err = capsys.readouterr()
        return Done(code, out, err)
    return invoke


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, Any]]:
    env = store_env("sqlite", tmp_path_factory.mktemp("marketing") / "data")
    hub = make_hub(env)
    try:
        ids = seed_marketing(hub)
        ids["sold"] = seed_marketing_sales(hub, ids)
    finally:
        hub.close()
    return env, ids


def test_campaign_figures_in_every_format(story: tuple[dict[str, str], dict[str, Any]],
                                          run: Callable[..., Done]) -> None:
    env, ids = story
    text = run(env, "marketing", "campaigns")
    assert text.returncode == 0, text.stderr
    header, *rows = text.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "STATE", "QUEUED", "SENT"]
    assert [r.split()[0] for r in rows] == ["Hotline", "Spring", "Webinar"]
    spring = json.loads(run(env, "marketing", "campaign", str(ids["spring"]), "--json").stdout)
    assert (spring[0]["sent"], spring[0]["suppressed"], spring[0]["responses"]) == (2, 2, 1)
    table = list(csv.DictReader(io.StringIO(
        run(env, "marketing", "events", str(ids["spring"]), "response", "--csv").stdout)))
    assert [r["event_id"] for r in table] == [ids["reply"]]
    segments = json.loads(run(env, "marketing", "segments", "--as-of", "2026-02-01",
                              "--json").stdout)
    assert [(s["name"], s["members"]) for s in segments] == [("Consenting prospects", 0)]
    totals = list(csv.DictReader(io.StringIO(
        run(env, "marketing", "consent", "--csv", "--as-of", "2026-01-01").stdout)))
    assert totals == [{"consent_channel": "email", "purpose": "marketing", "valid": "1",
                       "lapsed": "0", "withdrawn": "3", "expired": "0"}]


def test_attributed_sales_and_roi_in_every_format(
        story: tuple[dict[str, str], dict[str, Any]], run: Callable[..., Done]) -> None:
    env, ids = story
    [webinar] = json.loads(run(env, "marketing", "campaign", str(ids["webinar"]),
                               "--json").stdout)
    assert (webinar["orders_attributed"], webinar["revenue_attributed"], webinar["roi"],
            webinar["roi_note"]) == (1, {"EUR": "1500.00"}, "1.5000", None)
    [spring] = list(csv.DictReader(io.StringIO(
        run(env, "marketing", "campaign", str(ids["spring"]), "--csv").stdout)))
    assert (spring["opportunities_attributed"], spring["revenue_attributed"], spring["roi"],
            spring["roi_note"]) == ("1", "EUR=300.00 USD=250.00", "",
                                    "revenue in USD, budget in EUR: no exchange rates")
    orders = run(env, "marketing", "events", str(ids["spring"]), "order")
    assert orders.returncode == 0, orders.stderr
    assert sorted(line.split()[0] for line in orders.stdout.splitlines()[1:]) == sorted(
        [ids["sold"]["B1"], ids["sold"]["B2"]])
    header = run(env, "marketing", "campaigns").stdout.splitlines()[0]
    assert "REVENUE ATTRIBUTED" in header and "ROI" in header.split()


def test_commands_and_their_exit_codes(story: tuple[dict[str, str], dict[str, Any]],
                                       tmp_path: Path, run: Callable[..., Done]) -> None:
    env, ids = story
    done = run(env, "marketing", "close-campaign", "--campaign-id", str(ids["webinar"]))
    assert done.returncode == Exit.OK and json.loads(done.stdout)["event_ids"]
    again = run(env, "marketing", "launch-campaign", "--campaign-id", str(ids["webinar"]),
                "--source-key", "relaunch")
    assert again.returncode == Exit.CONFLICT and "closed" in again.stderr
    missing = run(env, "marketing", "campaign", "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f")
    assert missing.returncode == Exit.NOT_FOUND
    assert run(env, "marketing", "members", "nope").returncode == Exit.USAGE
    bad_rule = run(env, "marketing", "define-segment", "--name", "x", "--json",
                   input_text='{"rule": {"spend": 3}}')
    assert bad_rule.returncode == Exit.CONFLICT and "unknown rule" in bad_rule.stderr
    body = tmp_path / "body.txt"
    body.write_text("Hello")
    unsigned = run(env, "marketing", "send", str(ids["spring"]), "--from", "n@shop.example",
                   "--subject", "Hi", "--body-file", str(body))
    assert unsigned.returncode == Exit.USAGE and "PUBLIC_BASE_URL" in unsigned.stderr
