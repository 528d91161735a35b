"""The knowledge base end to end: article commands over HTTP (roles, refusals), search and
article routes for staff and partners, the deflection figure with as_of, the /help pages'
refusals without a browser (no such article 404, forged link 403), and the same reads
through ``touchstream kb …`` (in-process; the write subcommands are the routes' models)."""

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.conftest import store_env
from tests.support.api import Api
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.cli import main
from touchstream.read_side import ProjectionService, read_routes
from touchstream.selfservice_routes import selfservice_routes
from touchstream.wiring import build_hub

NOW = "2026-11-24T09:30:00+00:00"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return store_env("sqlite", tmp_path_factory.mktemp("kb") / "data")


@pytest.fixture(scope="module")
def api(env: dict[str, str]) -> Iterator[Api]:
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None)[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=[read_routes, selfservice_routes],
                     services=[ProjectionService(deps)])
    try:
        with TestClient(app) as client:
            yield Api(client=client, hub=hub, keys=keys, tokens=tokens)
    finally:
        keys.close()
        hub.close()


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_articles_over_http_and_the_cli(api: Api, env: dict[str, str]) -> None:
    body = {"title": "Bleeding a radiator", "body": "Turn the **key** slowly.",
            "tags": ["heating"], "visibility": "public", "source_key": "kb-e2e-1"}
    assert api.post("/commands/create-article", body, role="analyst").status_code == 403
    created = api.post("/commands/create-article", body, role="service")
    assert created.status_code == 201, created.text
    article = created.json()["customer_id"]
    assert api.post("/commands/create-article", body, role="agent").json()["duplicate"]
    assert api.post("/commands/create-article", {**body, "visibility": "secret"},
                    role="agent").status_code == 422
    staff_only = api.post("/commands/create-article", {
        "title": "Radiator refunds", "body": "Staff only.", "source_key": "kb-e2e-2"},
        role="agent").json()["customer_id"]
    published = api.post("/commands/publish-article", {"article_id": article}, role="agent")
    assert published.status_code == 201
    again = api.post("/commands/publish-article", {"article_id": article, "source_key": "p2"},
                     role="agent")
    assert again.status_code == 409 and "published already" in again.text
    assert api.post("/commands/publish-article", {"article_id": str(uuid4())},
                    role="agent").status_code == 404
    position = published.json()["position"]

    def get(path: str, role: str, **params: object) -> object:
        return api.client.get(path, params={"min_position": position, **params},
                              headers=api.auth(role))

    staff = get("/knowledge/articles", "marketing", q="radiat").json()["items"]
    assert {a["article_id"] for a in staff} == {article, staff_only}
    partner = get("/knowledge/articles", "partner", q="radiat").json()["items"]
    assert [a["article_id"] for a in partner] == [article]
    assert get(f"/knowledge/articles/{staff_only}", "partner").status_code == 404
    detail = get(f"/knowledge/articles/{article}", "auditor").json()
    assert detail["versions"][0]["body"] == "Turn the **key** slowly." and detail["cases"] == []
    assert get(f"/knowledge/articles/{uuid4()}", "agent").status_code == 404
    assert get("/knowledge/deflection", "marketing").status_code == 403
    figure = get("/knowledge/deflection", "analyst", as_of=NOW, days=7).json()
    assert figure["views"] == 0 and figure["rate"] is None
    assert get("/knowledge/deflection", "analyst", as_of="2026-11-24T09:30:00").status_code == 400

    # the public pages: no key; a hostile or unknown id, a forged link
    assert api.client.get(f"/help/articles/{staff_only}").status_code == 404
    assert api.client.get("/help/articles/not-an-id").status_code == 404
    forged = api.client.get(f"/help/cases/{uuid4()}.{uuid4()}.9999999999.AAAA")
    assert forged.status_code == 403 and "default-src 'none'" in forged.headers[
        "content-security-policy"]
    page = api.client.get("/help", params={"q": "radiator"})
    assert "Bleeding a radiator" in page.text and "refunds" not in page.text

    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        code, out, err = cli("kb", "search", "radiator", "--public", "--json")
        assert code == 0, err
        assert [a["article_id"] for a in json.loads(out)["items"]] == [article]
        code, out, _ = cli("kb", "deflection", "--as-of", NOW, "--days", "7")
        assert code == 0 and "0 views with a closed 7-day window" in out
        assert cli("kb", "deflection", "--days", "999")[0] == 2
        code, out, _ = cli("kb", "status-link", "--case", str(uuid4()), "--customer",
                           str(uuid4()))
        assert code == 0 and "/help/cases/" in out
