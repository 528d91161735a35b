"""The value and retention analytics over HTTP and the CLI: the twelve-customer story of
``tests.support.value`` as JSON and CSV, the drill-down to its events, the roles."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from commands.identity import normalise_email, normalise_number
from domain.value import ValuePolicy
from projections import registry
from projections.engine import Worker
from read_api.routes import ReadViews, read_router
from tests.support.hubs import make_hub
from tests.support.readside import ROLES, TestAuthorizer
from tests.support.value import TIER_SUMMARY, TRIANGLE, WINDOW, seed_value
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.cli import main as cli_main
from touchstream.cli.exits import Exit
from touchstream.http_errors import install_error_handlers

POLICY = ValuePolicy(churn_window_months=WINDOW, margin=Decimal("0.3"),
                     discount_rate=Decimal(0))
STORY = {"from": "2026-01-01", "until": "2026-06-30"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    env = {"TOUCHSTREAM_DATA": str(tmp_path_factory.mktemp("value-api") / "data")}
    settings = settings_mod.load(env)
    hub = make_hub(env)
    who = seed_value(hub)
    store = Dependencies(settings).read_store
    db = store.connect()
    source = Dependencies(settings, hub=hub).event_source()
    Worker(db, source, [(registry.get("value"), None)]).catch_up()
    db.close()
    source.close()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(read_router(
        ReadViews.on(store), TestAuthorizer(),
        normalise_phone=lambda raw: normalise_number(raw, "GB"),
        normalise_email=normalise_email, audit=None, value_policy=POLICY))
    with TestClient(app) as client:
        yield {"client": client, "ids": who, "env": env}
    hub.close()


def get(client: TestClient, path: str, token: str | None = "analyst", **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, params=params, headers=headers)


def test_cohorts_answer_the_hand_computed_triangle_as_json_and_csv(
        world: dict[str, Any]) -> None:
    client = world["client"]
    doc = get(client, "/analytics/cohorts", **STORY).json()
    assert doc["churn_window_months"] == WINDOW and doc["until"] == "2026-06-30"
    assert {(r["cohort"], r["period"]): (r["active"], r["churned"], r["returned"],
                                         r["churn_rate"], r["retention_rate"], r["share"])
            for r in doc["rows"]} == TRIANGLE
    later = get(client, "/analytics/cohorts", **{**STORY, "from": "2026-03-05"}).json()
    assert {r["cohort"] for r in later["rows"]} == {"2026-03", "2026-04", "2026-06"}
    answer = get(client, "/analytics/cohorts", format="csv", **STORY)
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == len(TRIANGLE)
    assert rows[1] == {"cohort": "2026-01", "period": "1", "month": "2026-02", "size": "5",
                       "active": "4", "churned": "1", "returned": "0", "churn_rate": "0.2",
                       "retention_rate": "0.8", "share": "0.8"}


def test_a_cohort_cell_drills_down_to_its_members_events_page_by_page(
        world: dict[str, Any]) -> None:
    client, ids = world["client"], world["ids"]
    cell = {**STORY, "cohort": "2026-02", "period": 3, "status": "returned"}
    first = get(client, "/analytics/cohorts/events", limit=2, **cell).json()
    assert first["next_cursor"] and len(first["items"]) == 2
    rest = get(client, "/analytics/cohorts/events", cursor=first["next_cursor"], **cell).json()
    items = first["items"] + rest["items"]
    assert {i["customer_id"] for i in items} == {ids["g"]}  # g came back in May
    assert [i["role"] for i in items] == ["order_placed", "stage", "order_placed"]
    assert items[-1]["detail"] == {"order_number": "G-2", "currency": "EUR",
                                   "amount": "300.00"}
    foreign = get(client, "/analytics/value/events", customer_id=ids["g"],
                  cursor=first["next_cursor"], **STORY)
    assert foreign.status_code == 400


def test_value_tiers_and_rfm_as_computed_by_hand(world: dict[str, Any]) -> None:
    client, ids = world["client"], world["ids"]
    letter = {v: k for k, v in ids.items()}
    page = get(client, "/analytics/value", limit=2, **STORY).json()
    assert (page["total"], page["next_offset"]) == (9, 2)
    tie = letter[min(ids["a"], ids["g"])]  # a and g tie at 180.00: by customer id
    assert [(letter[r["customer_id"]], r["clv"]) for r in page["rows"]] == [
        ("f", "600.00"), (tie, "180.00")]
    rest = get(client, "/analytics/value", offset=2, limit=100, **STORY).json()
    assert rest["next_offset"] is None and len(rest["rows"]) == 7
    events = get(client, "/analytics/value/events", customer_id=ids["j"], **STORY).json()
    assert [i["role"] for i in events["items"]] == ["order_placed", "order_returned"]

    tiers = get(client, "/analytics/value/tiers", **STORY).json()
    assert {r["tier"]: (r["customers"], r["revenue"], r["share"])
            for r in tiers["rows"]} == TIER_SUMMARY
    key = get(client, "/analytics/value/tiers/events", tier="key", **STORY).json()
    assert {letter[i["customer_id"]] for i in key["items"]} == set("afg")
    text = get(client, "/analytics/value/tiers", format="csv", **STORY).text
    assert text.splitlines()[1] == "key,0.5,3,3200.00,0.7143"

    rfm = get(client, "/analytics/rfm", **STORY).json()
    assert rfm["period_days"] == 181 and rfm["total"] == 9
    a = next(r for r in rfm["rows"] if r["customer_id"] == ids["a"])
    assert (a["frequency"], a["monetary"], a["recency_days"]) == (6, "600.00", 20)


def test_only_analysts_read_the_value_figures(world: dict[str, Any]) -> None:
    client = world["client"]
    assert get(client, "/analytics/cohorts", None, **STORY).status_code == 401
    for role in ROLES:
        code = get(client, "/analytics/value/tiers", role, **STORY).status_code
        assert code == (200 if role in ("analyst", "admin") else 403), (role, code)
    bad = get(client, "/analytics/cohorts/events", cohort="2026-13", period=0, **STORY)
    assert bad.status_code == 422
    for far in ({"cohort": "9999-12", "period": 1200}, {"cohort": "0000-01", "period": 0}):
        answer = get(client, "/analytics/cohorts/events", **far, **STORY)
        assert (answer.status_code, answer.json()["items"]) == (200, []), far


def test_openapi_documents_the_value_routes_with_examples(world: dict[str, Any]) -> None:
    spec = world["client"].get("/openapi.json").json()
    for path in ("/analytics/cohorts", "/analytics/cohorts/events", "/analytics/value",
                 "/analytics/value/events", "/analytics/value/tiers",
                 "/analytics/value/tiers/events", "/analytics/rfm", "/analytics/rfm/events"):
        assert path in spec["paths"], path
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert any("example" in c or "examples" in c for c in ok.values()) or \
            path.endswith("/events"), path
    for schema in ("CohortsPublic", "ValuePagePublic", "TiersPublic", "RfmAnalyticsPublic"):
        assert spec["components"]["schemas"][schema].get("examples"), schema


def test_the_cli_prints_the_figures_and_draws_the_cohort_heatmap(
        world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env, ids = world["env"], world["ids"]
    for name, value in {**env, "TOUCHSTREAM_VALUE_CHURN_WINDOW_MONTHS": str(WINDOW),
                        "TOUCHSTREAM_VALUE_MARGIN": "0.3",
                        "TOUCHSTREAM_VALUE_DISCOUNT_RATE": "0"}.items():
        monkeypatch.setenv(name, value)
    png = tmp_path / "cohorts.png"
    assert cli_main(["analytics", "cohorts", "--from", "2026-01-01", "--until", "2026-06-30",
                     "--csv", "--plot", str(png)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(r["cohort"], int(r["period"])): int(r["active"]) for r in rows} == {
        k: v[0] for k, v in TRIANGLE.items()}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli_main(["analytics", "value", "--until", "2026-06-30", "--json",
                     "--limit", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["rows"][0]["customer_id"], doc["rows"][0]["clv"], doc["next_offset"]) == (
        ids["f"], "600.00", 1)
    assert cli_main(["analytics", "tiers", "--from", "2026-01-01", "--until",
                     "2026-06-30"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["TIER", "UP_TO_SHARE", "CUSTOMERS", "REVENUE", "SHARE"]
    assert table[1].split() == ["key", "0.5", "3", "3200.00", "0.7143"]
    assert cli_main(["analytics", "rfm", "--currency", "euro"]) == Exit.USAGE
    assert "ISO 4217" in capsys.readouterr().err
