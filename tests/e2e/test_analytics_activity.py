"""Activity analytics end to end: the routes (JSON, CSV, the drill-down paged to its end,
a bad window and a foreign cursor refused with the one error shape, non-analyst keys
refused) and ``touchstream analytics …`` (table, JSON, CSV, a PNG chart, bad input exit 2)
over a small book seeded with the demo's activity and service episodes."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from commands import messages as m
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections.channel_mix.view import ChannelMixView
from projections.response_times.view import ResponseTimesView
from projections.satisfaction.view import SatisfactionView
from tests.conftest import store_env
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.cli import main
from touchstream.demo_analytics import activity_plan
from touchstream.demo_service import service_plan
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub

UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
WINDOW = {"from": "2025-10-01", "until": "2026-09-30", "by": "month"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = store_env("sqlite", tmp_path_factory.mktemp("analytics") / "data")
    hub = build_hub(settings_mod.load(env))
    try:
        people = [UUID(hub.execute(m.RegisterCustomer(
            name=f"C{i}", source_key=f"reg{i}", occurred_at=UNTIL - timedelta(days=500)
        )).customer_id) for i in range(8)]
        for cmd in [*activity_plan(people, 2, UNTIL), *service_plan(people, 2, UNTIL)]:
            hub.execute(cmd)
    finally:
        hub.close()
    return env


@pytest.fixture(scope="module")
def client(env: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    conf = settings_mod.load(env)
    hub, keys = build_hub(conf), open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None)[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=[read_routes], services=[ProjectionService(deps)])
    try:
        with TestClient(app) as c:
            head = int(hub.recorder.max_notification_id() or 0)
            views = [ChannelMixView(deps.read_store), SatisfactionView(deps.read_store),
                     ResponseTimesView(deps.read_store, config_from_mapping(DEFAULT_CONFIG))]
            deadline = time.monotonic() + 60  # they catch up in the background at start
            while min(v.position() for v in views) < head:
                assert time.monotonic() < deadline, "the analytics read models did not catch up"
                time.sleep(0.02)
            yield c, tokens
    finally:
        keys.close()
        hub.close()


def get(client: tuple[TestClient, dict[str, str]], path: str, role: str = "analyst",
        **params: Any) -> Any:
    c, tokens = client
    for _ in range(200):  # the read models catch up in the background at start
        r = c.get(path, params=params, headers={"Authorization": f"Bearer {tokens[role]}"})
        if r.status_code != 503:
            return r
    return r


def test_figures_as_json_and_csv(client: tuple[TestClient, dict[str, str]]) -> None:
    mix = get(client, "/analytics/channel-mix", split="stage", **WINDOW)
    assert mix.status_code == 200, mix.text
    doc = mix.json()
    assert doc["total"] > 0 and doc["periods"][0] == "2025-10"
    assert sum(r["touchpoints"] for r in doc["rows"]) == doc["total"]
    text = get(client, "/analytics/channel-mix", format="csv", split="stage", **WINDOW)
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert sum(int(r["touchpoints"]) for r in rows) == doc["total"]
    times = get(client, "/analytics/response-times", **WINDOW).json()
    answered = [r for r in times["rows"] if r["channel"] == "(all)" and r["answered"]]
    assert answered and all(r["p90_s"] >= r["median_s"] for r in answered)
    csat = get(client, "/analytics/satisfaction", **{**WINDOW, "from": "2024-10-01"}).json()
    assert sum(r["csat_answers"] for r in csat["rows"]) > 0
    assert any(r["complaint_rate"] for r in csat["rows"])
    as_of = get(client, "/analytics/channel-mix", as_of="2020-01-01", **WINDOW).json()
    assert as_of["total"] == 0  # nothing was recorded by then (the store's clock is now)


def test_drill_down_pages_every_contributing_event_once(
        client: tuple[TestClient, dict[str, str]]) -> None:
    total = get(client, "/analytics/channel-mix", direction="inbound", **WINDOW).json()["total"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {**WINDOW, "direction": "inbound", "limit": 9}
        page = get(client, "/analytics/channel-mix/events",
                   **(params | ({"cursor": cursor} if cursor else {}))).json()
        seen += [i["event_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == total
    other = get(client, "/analytics/channel-mix/events", cursor=cursor or "x", **WINDOW)
    assert other.status_code == 400 and other.json()["error"] == "bad_request"
    first = get(client, "/analytics/channel-mix/events", limit=1, direction="inbound",
                **WINDOW).json()
    foreign = get(client, "/analytics/response-times/events", cursor=first["next_cursor"],
                  **WINDOW)
    assert foreign.status_code == 400 and "cursor" in foreign.json()["reason"]
    inbound = get(client, "/analytics/response-times/events", limit=500, **WINDOW).json()
    assert any(i["detail"]["response_event_id"] for i in inbound["items"])
    csat = get(client, "/analytics/satisfaction/events", kind="csat",
               **{**WINDOW, "from": "2024-10-01"}).json()
    assert csat["items"] and {i["role"] for i in csat["items"]} == {"csat"}


def test_bad_windows_and_other_roles_are_refused(
        client: tuple[TestClient, dict[str, str]]) -> None:
    back = get(client, "/analytics/satisfaction", **{"from": "2026-02-01", "until": "2026-01-01"})
    assert back.status_code == 400 and back.json()["reason"].startswith("until (2026-01-01)")
    long = get(client, "/analytics/response-times", **{"from": "2000-01-01"})
    assert long.status_code == 400 and "at most" in long.json()["reason"]
    assert get(client, "/analytics/channel-mix", by="year").status_code == 422
    far = get(client, "/analytics/channel-mix", as_of="9999-12-31")
    assert far.status_code == 400 and "as_of must be between" in far.json()["reason"]
    for role in ("agent", "service", "partner", "marketing"):
        assert get(client, "/analytics/channel-mix", role=role).status_code == 403
    assert get(client, "/analytics/satisfaction/events", role="admin").status_code == 200


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_cli_tables_json_csv_and_a_png(env: dict[str, str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    window = ["--from", "2025-10-01", "--until", "2026-09-30", "--by", "month"]
    code, out, _ = run("analytics", "channel-mix", *window, "--json")
    assert code == 0
    doc = json.loads(out)
    code, out, _ = run("analytics", "channel-mix", *window, "--csv")
    assert sum(int(r["touchpoints"]) for r in csv.DictReader(io.StringIO(out))) == doc["total"]
    chart = tmp_path / "mix.png"
    code, out, _ = run("analytics", "response-times", *window, "--plot", str(chart))
    assert code == 0 and out.startswith("PERIOD") and " h" in out
    assert chart.read_bytes()[:8] == PNG
    code, out, _ = run("analytics", "satisfaction", *window, "--plot", str(tmp_path / "s.png"))
    assert code == 0 and "CSAT_AVERAGE" in out and (tmp_path / "s.png").read_bytes()[:8] == PNG
    code, out, _ = run("analytics", "satisfaction", *window, "--csv")
    scores = [json.loads(r["scores"]) for r in csv.DictReader(io.StringIO(out))]
    assert sum(sum(s.values()) for s in scores) > 0  # nested values as JSON, as the API
    code, _, err = run("analytics", "channel-mix", "--from", "2026-13-01")
    assert code == 2 and "--from: not a date" in err
    code, _, err = run("analytics", "channel-mix", "--plot", str(tmp_path / "x.gif"))
    assert code == 2 and "PNG" in err
