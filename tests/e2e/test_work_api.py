"""Work end to end: task routes record their events (refusals 409, bad input 422, roles
403), my tasks / my day / the team calendar / the supervisor's view over HTTP, the
calendar feed behind its signed token (a wrong token is 404), a rebalancing move, and the
same data through ``touchstream tasks …`` and ``touchstream supervisor`` (in-process)."""

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from tests.conftest import store_env
from tests.support.api import Api
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.cli import main
from touchstream.read_side import ProjectionService, read_routes
from touchstream.replies_routes import replies_routes
from touchstream.wiring import build_hub
from touchstream.work_routes import work_routes

NOW = "2026-11-24T09:30:00+00:00"
WORK_FILE = """zone = "Europe/Berlin"
[[staff]]
id = "jo"
team = "billing"
[[staff]]
id = "sam"
team = "billing"
[[territories]]
name = "berlin"
prefixes = ["DE-10"]
owner = "sam"
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("work")
    (root / "work.toml").write_text(WORK_FILE)
    return {**store_env("sqlite", root / "data"), "TOUCHSTREAM_WORK_FILE": str(root / "work.toml"),
            "TOUCHSTREAM_WORK_FEED_SECRET": "s3cret-feed", "TOUCHSTREAM_WORK_POLICIES": "n"}


@pytest.fixture(scope="module")
def api(env: dict[str, str]) -> Iterator[Api]:
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None)[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=[read_routes, work_routes, replies_routes],
                     services=[ProjectionService(deps)])
    try:
        with TestClient(app) as client:
            yield Api(client=client, hub=hub, keys=keys, tokens=tokens)
    finally:
        keys.close()
        hub.close()


def post(api: Api, name: str, body: dict[str, Any], role: str = "agent") -> Any:
    return api.post(f"/commands/{name}", body, role=role)


def get(api: Api, path: str, role: str = "agent", **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.auth(role))


def register(api: Api) -> str:
    r = post(api, "register-customer", {"name": "Ada", "source_key": f"reg:{uuid4()}"},
             role="admin")
    assert r.status_code == 201, r.text
    return str(r.json()["customer_id"])


def test_tasks_views_feed_and_rebalancing(api: Api, env: dict[str, str]) -> None:
    cid = register(api)
    late, today, queued = str(uuid4()), str(uuid4()), str(uuid4())
    body = {"customer_id": cid, "task_id": late, "title": "Send the form",
            "due_at": "2026-11-23T09:00:00+00:00", "assignee": "jo"}
    first = post(api, "create-task", body)
    assert first.status_code == 201, first.text
    assert post(api, "create-task", body).json()["duplicate"] is True
    assert post(api, "create-task", {**body, "task_id": today, "task_kind": "meeting",
                                     "title": "Visit Ada", "due_at": "2026-11-24T14:00:00+01:00",
                                     "ends_at": "2026-11-24T15:00:00+01:00",
                                     "reminder_at": "2026-11-24T13:30:00+01:00"}
                ).status_code == 201
    assert post(api, "create-task", {**body, "task_id": queued, "assignee": None,
                                     "queue": "billing"}).status_code == 201
    refused = post(api, "create-task", {**body, "task_id": str(uuid4()),
                                        "ends_at": "2026-11-22T09:00:00+00:00"})
    assert refused.status_code == 409 and "ends at or after" in refused.text
    assert post(api, "create-task", {**body, "due_at": "2026-11-23T09:00:00"}
                ).status_code == 422
    assert post(api, "create-task", body, role="marketing").status_code == 403
    moved = post(api, "move-work", {"customer_id": cid, "item_kind": "task", "item_id": queued,
                                    "to_agent": "sam"}, role="service")
    assert moved.status_code == 201, moved.text
    at = moved.json()["position"]

    mine = get(api, "/work/tasks", staff="jo", now=NOW, min_position=at)
    assert mine.status_code == 200, mine.text
    assert [t["task_id"] for t in mine.json()["tasks"]] == [late, today]
    assert mine.json()["overdue"] == 1 and mine.json()["tasks"][0]["overdue"] is True
    day = get(api, "/work/day", staff="jo", on="2026-11-24", now=NOW).json()
    assert [t["task_id"] for t in day["tasks"]] == [late, today]
    week = get(api, "/work/calendar", team="billing", on="2026-11-23", period="week", now=NOW)
    assert {s["staff"] for s in week.json()["staff"]} == {"jo", "sam"}
    assert get(api, "/work/calendar", team="nobody").status_code == 400
    assert get(api, "/work/day", staff="jo", zone="Mars/Olympus").status_code == 400
    assert get(api, "/work/supervisor", role="agent").status_code == 403
    paid = get(api, "/sales/commissions", role="sales", **{"from": "2026-01-01T00:00:00Z",
                                                            "to": "2027-01-01T00:00:00Z"})
    assert paid.status_code == 200 and paid.json()["items"] == []
    assert get(api, "/sales/commissions", role="sales", **{"from": "2026-01-01T00:00:00Z",
                                                            "to": "2025-01-01T00:00:00Z"}
               ).status_code == 400
    sup = get(api, "/work/supervisor", role="service", now=NOW).json()
    assert {a["agent"]: a["load"] for a in sup["agents"]} == {"jo": 2, "sam": 1}

    link = get(api, "/work/feed-link", staff="jo").json()["url"]
    feed = api.client.get(link)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    assert {str(e["UID"]) for e in events} == {f"{late}@touchstream", f"{today}@touchstream"}
    assert [len(e.walk("VALARM")) for e in events if str(e["UID"]).startswith(today)] == [1]
    assert api.client.get(link.replace("/jo.ics", "/sam.ics")).status_code == 404
    assert api.client.get("/calendar/jo.ics").status_code == 404

    assert post(api, "complete-task", {"customer_id": cid, "task_id": late}).status_code == 201
    again = post(api, "cancel-task", {"customer_id": cid, "task_id": late,
                                      "source_key": "cancel-after-done"})
    assert again.status_code == 409 and "completed" in again.text

    # the same through the CLI
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mine_cli = json.loads(cli_ok("tasks", "mine", "--staff", "jo", "--now", NOW, "--json"))
        assert [t["task_id"] for t in mine_cli["tasks"]] == [today]
        assert "OVERDUE" in cli_ok("tasks", "day", "--staff", "jo", "--on", "2026-11-24",
                                   "--now", NOW)
        assert "jo" in cli_ok("tasks", "calendar", "--team", "billing", "--on", "2026-11-23",
                              "--week", "--csv")
        assert "AGENT" in cli_ok("supervisor", "--now", NOW)
        assert cli_ok("tasks", "feed-link", "--staff", "jo").strip() == link
        assert "0 follow-up task(s)" in cli_ok("tasks", "react")
        code, _, err = cli("tasks", "reschedule-task", "--customer-id", cid, "--task-id", late,
                           "--due-at", "2026-11-30T09:00:00+00:00")
        assert code == 3 and "completed" in err
        assert cli("tasks", "calendar", "--team", "nobody")[0] == 2
        assert "COMMISSION" in cli_ok("commissions", "--from", "2026-01-01", "--to", "2027-01-01")


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def cli_ok(*args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, err
    return out


def test_the_feed_is_off_without_a_secret(tmp_path: Path) -> None:
    from tests.support.api import running_api

    with running_api(store_env("sqlite", tmp_path / "data"), routers=(work_routes,)) as api:
        assert get(api, "/work/feed-link", staff="jo").status_code == 409
        assert api.client.get("/calendar/jo.ics", params={"token": "x"}).status_code == 404


def test_templates_preview_templated_reply_territories_and_auto_replies(
        api: Api, env: dict[str, str]) -> None:
    cid = register(api)
    body = {"name": "reply", "language": "en", "subject": "Re: {{ subject }}",
            "body_text": "Dear {{ customer.name }}, {{ answer }}",
            "body_html": "<p>{{ customer.name }}: {{ answer }}</p>"}
    assert post(api, "save-template", body, role="agent").status_code == 403
    assert post(api, "save-template", body, role="service").status_code == 201
    shown = get(api, "/templates/reply").json()
    assert (shown["latest"], list(shown["versions"])) == (1, ["en"])
    preview = {"customer_id": cid, "variables": {"subject": "Bill", "answer": "<b>paid</b>"}}
    r = api.client.post("/templates/reply/preview", json=preview, headers=api.auth("agent"))
    assert r.status_code == 200, r.text
    assert r.json()["body_text"] == "Dear Ada, <b>paid</b>"
    assert r.json()["body_html"] == "<p>Ada: &lt;b&gt;paid&lt;/b&gt;</p>"
    r = api.client.post("/templates/reply/preview", json={"customer_id": cid},
                        headers=api.auth("agent"))
    assert r.status_code == 409 and "undefined" in r.json()["detail"]
    assert api.client.post("/templates/nope/preview", json=preview,
                           headers=api.auth("agent")).status_code == 404
    assert api.client.post("/templates/reply/preview", json=preview,
                           headers=api.auth("analyst")).status_code == 403
    # the staff reply renders the template and queues the email
    send = {"customer_id": cid, "from_address": "jo@shop.example", "to": ["ada@example.com"],
            "template_id": shown["template_id"], "source_key": "reply-http-1",
            "variables": {"subject": "Bill", "answer": "it is paid"}}
    r = post(api, "send-email", send)
    assert r.status_code == 201, r.text
    assert post(api, "send-email", send).json()["duplicate"] is True
    assert post(api, "send-email", {**send, "template_id": None,
                                    "source_key": "x"}).status_code == 422
    # territories: reassigned over HTTP (sales only), listed with their owner
    assert post(api, "reassign-territory", {"territory": "berlin", "to_owner": "jo"},
                role="agent").status_code == 403
    assert post(api, "reassign-territory", {"territory": "mars", "to_owner": "jo"},
                role="sales").status_code == 409
    assert post(api, "reassign-territory", {"territory": "berlin", "to_owner": "jo"},
                role="sales").status_code == 201
    (berlin,) = get(api, "/sales/territories", role="sales").json()["items"]
    assert (berlin["territory"], berlin["owner"], berlin["configured_owner"]) == (
        "berlin", "jo", "sam")
    assert get(api, "/service/auto-replies", role="service").json() == {"items": []}
    assert get(api, "/service/auto-replies", role="analyst").status_code == 403
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        assert json.loads(cli_ok("territories", "--json"))["items"][0]["owner"] == "jo"
        shown_cli = cli_ok("templates", "preview", "reply", "--customer", cid, "--var",
                           "subject=Bill", "--var", "answer=ok")
        assert "Subject: Re: Bill" in shown_cli and "Dear Ada, ok" in shown_cli
        assert "OUTCOME" in cli_ok("auto-replies")
