"""``touchstream import orders`` and ``touchstream sales …`` end to end (subprocesses)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands import messages as m
from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub
from tests.support.sales import seed_sales

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env})


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str],
                                                                       dict[str, str]]]:
    env = store_env("sqlite", tmp_path_factory.mktemp("sales-cli") / "data")
    hub = make_hub(env)
    try:
        ids = seed_sales(hub)
        ids["eve"] = hub.execute(m.RegisterCustomer(
            name="Eve", source_key="reg:eve",
            contact_points=[m.ContactPointIn(kind="email", value="eve@example.com")])
        ).customer_id
    finally:
        hub.close()
    yield env, ids


CSV = """order_number,customer_email,customer_id,placed_at,currency,total,product_code,quantity,unit_price,discount
ERP-1,eve@example.com,,2026-03-01T10:00:00+00:00,EUR,118.00,A,2,50.00,
ERP-1,eve@example.com,,2026-03-01T10:00:00+00:00,EUR,118.00,B,1,20.00,10
ERP-2,,{bob},2026-03-02T10:00:00+00:00,EUR,99.00,A,1,50.00,
ERP-3,nobody@example.com,,2026-03-03T10:00:00+00:00,EUR,5.00,A,1,5.00,
ERP-4,,{bob},2026-03-04T10:00:00+00:00,EUR,7.50,C,3,2.50,
"""


def test_import_orders_keeps_good_orders_reports_bad_ones_and_is_idempotent(
        seeded: tuple[dict[str, str], dict[str, str]], tmp_path: Path) -> None:
    env, ids = seeded
    path = tmp_path / "orders.csv"
    path.write_text(CSV.format(bob=ids["bob"]))
    first = cli(env, "import", "orders", str(path))
    assert first.returncode == 1, first.stderr
    assert json.loads(first.stdout) == {"recorded": 2, "duplicates": 0, "failed": 2}
    assert "line 4: order ERP-2:" in first.stderr and "sum to 50.00 EUR" in first.stderr
    assert "line 5: no customer owns email 'nobody@example.com'" in first.stderr
    again = cli(env, "import", "orders", str(path))
    assert json.loads(again.stdout) == {"recorded": 0, "duplicates": 2, "failed": 2}

    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"order_number": "ERP-5", "customer_id": ids["cy"], "currency": "EUR",
                    "total": "10.00", "placed_at": "2026-03-05T09:00:00Z",
                    "lines": [{"product_code": "Z", "quantity": "1", "unit_price": "10"}]}),
        json.dumps({"order_number": "ERP-6", "customer_id": ids["cy"], "currency": "EUR",
                    "total": 10.0, "lines": [{"product_code": "Z", "quantity": "1",
                                              "unit_price": "10"}]}),
        "{not json", ""]))
    result = cli(env, "import", "orders", str(jsonl))
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"recorded": 1, "duplicates": 0, "failed": 2}
    assert "line 2: total: Input should be a valid string" in result.stderr
    assert "line 3: not JSON" in result.stderr

    listed = cli(env, "sales", "orders", ids["eve"], "--json")
    assert listed.returncode == 0, listed.stderr
    (order,) = json.loads(listed.stdout)["items"]
    assert (order["order_number"], order["total"], order["lines"]) == ("ERP-1", "118.00", 2)


def test_sales_figures_print_as_table_json_and_csv(
        seeded: tuple[dict[str, str], dict[str, str]]) -> None:
    env, ids = seeded
    pipeline = cli(env, "sales", "pipeline", "--json")
    assert pipeline.returncode == 0, pipeline.stderr
    assert {(g["stage"], g["weighted"]) for g in json.loads(pipeline.stdout)["items"]} == {
        ("proposal", "500.00"), ("negotiation", "240.40")}
    forecast = cli(env, "sales", "forecast", "--csv")
    rows = list(csv.DictReader(io.StringIO(forecast.stdout)))
    assert {(r["currency"], r["weighted"]) for r in rows} == {("EUR", "500.00"),
                                                              ("USD", "240.40")}
    table = cli(env, "sales", "stages")
    assert "win_rate: 0.5" in table.stdout and "qualification" in table.stdout
    rfm = cli(env, "sales", "rfm", "--as-of", "2026-02-28", "--json")
    assert {r["customer_id"]: r["rfm"] for r in json.loads(rfm.stdout)["items"]} == {
        ids["ada"]: "133", ids["cy"]: "311"}


def test_sales_commands_run_from_the_command_line_and_refuse_invalid_moves(
        seeded: tuple[dict[str, str], dict[str, str]]) -> None:
    env, ids = seeded
    opened = cli(env, "sales", "open-opportunity", "--customer-id", ids["cy"], "--title",
                 "Upsell", "--amount", "250", "--currency", "EUR", "--expected-close",
                 "2026-06-30", "--owner", "jo", "--source-key", "cli-opp-1")
    assert opened.returncode == 0, opened.stderr
    listed = json.loads(cli(env, "sales", "opportunities", ids["cy"], "--json").stdout)
    (opp,) = listed["items"]
    assert (opp["title"], opp["stage"], opp["amount"]) == ("Upsell", "qualification", "250.00")
    bad = cli(env, "sales", "move-opportunity-stage", "--customer-id", ids["cy"],
              "--opportunity-id", opp["opportunity_id"], "--to-stage", "qualification")
    assert bad.returncode == 3 and "in 'qualification' already" in bad.stderr
