"""``touchstream service …`` and ``touchstream replay sla`` over a small demo book: tables,
JSON and CSV; a transition and its refusal (documented exit codes). The demo is seeded by
a subprocess; the commands under test run in-process through ``main`` (same parser, same
error translation) because each subprocess costs seconds of imports on a busy machine."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tests.conftest import store_env
from touchstream.cli import main

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-10-01T12:00:00+00:00"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    def __call__(self, *args: str) -> Done:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        return Done(code, out.getvalue(), err.getvalue())

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    env = store_env("sqlite", tmp_path_factory.mktemp("svc-cli") / "data")
    seeded = subprocess.run(
        [sys.executable, "-m", "touchstream.cli", "demo", "--customers", "15", "--years", "1",
         "--until", AS_OF], check=False, cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=300)
    assert seeded.returncode == 0, seeded.stderr
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        yield Cli()


def test_queue_case_and_statistics_as_table_json_and_csv(cli: Cli) -> None:
    queue: dict[str, Any] = json.loads(cli.ok("service", "queue", "--as-of", AS_OF, "--json"))
    assert queue["total"] > 0 and {i["sla_state"] for i in queue["items"]} <= {
        "ok", "at_risk", "breached"}
    table = cli.ok("service", "queue", "--as-of", AS_OF)
    assert "NEXT DEADLINE" in table and "AT RISK" in table
    rows = list(csv.reader(io.StringIO(cli.ok("service", "queue", "--as-of", AS_OF, "--csv"))))
    assert rows[0][0] == "CASE" and len(rows) == min(queue["total"], 50) + 1
    case = queue["items"][0]["case_id"]
    detail = json.loads(cli.ok("service", "case", case, "--as-of", AS_OF, "--json"))
    assert detail["steps"][0]["kind"] == "CaseOpened" and len(detail["timers"]) == 2
    assert "TIMER" in cli.ok("service", "case", case, "--as-of", AS_OF)
    stats = json.loads(cli.ok("service", "stats", "--from", "2026-07-01", "--to", "2026-10-02",
                              "--period", "month", "--as-of", AS_OF, "--json"))
    assert sum(b["cases"] for b in stats["items"]) >= queue["total"]
    assert any(b["breach_rate"] for b in stats["items"])
    assert cli("service", "case", "not-an-id").returncode == 2
    assert cli("service", "case", str(uuid4()), "--as-of", AS_OF).returncode == 4


def test_a_transition_and_its_refusal(cli: Cli) -> None:
    queue = json.loads(cli.ok("service", "queue", "--as-of", AS_OF, "--json"))
    item = queue["items"][0]
    ids = ("--customer-id", item["customer_id"], "--case-id", item["case_id"])
    cli.ok("service", "assign-case", *ids, "--queue", "default", "--agent", "zoe")
    refused = cli("service", "resume-case", *ids)
    assert refused.returncode == 3 and "cannot resume" in refused.stderr
    assert cli("service", "record-satisfaction", *ids, "--score", "7").returncode == 2
    link = cli.ok("service", "survey-link", *ids).strip()
    assert link.startswith(f"/forms/survey/{item['customer_id']}.{item['case_id']}.")


def test_replay_sla_compares_policies_without_touching_the_read_models(
        cli: Cli, tmp_path: Path) -> None:
    policy = tmp_path / "strict.toml"
    policy.write_text("[policy.standard.targets]\n"
                      + "".join(f"{p} = {{ first_response_min = 5, resolution_min = 10 }}\n"
                                for p in ("urgent", "high", "normal", "low")))
    out = json.loads(cli.ok("replay", "sla", "--policy", str(policy), "--from", "2026-06-01",
                            "--to", "2026-10-02", "--as-of", AS_OF, "--json"))
    assert out["current"]["cases"] == out["new"]["cases"] > 0
    assert out["new"]["breached"] > out["current"]["breached"]
    assert "FIGURE" in cli.ok("replay", "sla", "--policy", str(policy), "--as-of", AS_OF)
    bad = tmp_path / "bad.toml"
    bad.write_text("[calendar.x]\ntimezone = 'Mars/Olympus'\nhours = { mon = ['08:00-17:00'] }\n")
    done = cli("replay", "sla", "--policy", str(bad))
    assert done.returncode == 2 and "Mars/Olympus" in done.stderr


def test_contracts_of_a_customer_as_table_json_and_csv(cli: Cli) -> None:
    queue = json.loads(cli.ok("service", "queue", "--as-of", AS_OF, "--json", "--limit", "500"))
    covered = next(i["customer_id"] for i in queue["items"] if not i["outside_contract"])
    doc = json.loads(cli.ok("service", "contracts", covered, "--as-of", AS_OF, "--json"))
    assert doc["contracts"] and doc["products"]  # the demo's every third customer
    assert doc["as_of"] == AS_OF[:10]
    assert doc["active_contracts"] == sum(c["state"] == "active" for c in doc["contracts"])
    table = cli.ok("service", "contracts", doc["customer_id"], "--as-of", AS_OF)
    assert doc["contracts"][0]["contract_id"] in table and "in force" in table
    rows = list(csv.reader(io.StringIO(cli.ok("service", "contracts", doc["customer_id"],
                                              "--as-of", AS_OF, "--csv"))))
    assert rows[0][:2] == ["KIND", "ID"] and len(rows) == 1 + len(doc["contracts"]) + len(
        doc["products"])
    assert cli("service", "contracts", "not-an-id").returncode == 2
    assert cli("service", "contracts", str(uuid4())).returncode == 4
