"""Accounts and data quality end to end: command routes (422 reasons, 409 rules, 404,
roles), read routes with partner scoping and read-your-writes, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from touchstream.wiring import build_hub

VAT = "GB980780684"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app as ``touchstream serve`` builds it: read routes and the projection runner."""
    env = store_env("sqlite", tmp_path_factory.mktemp("accounts-api"))
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None, f"test-{role}")[1]
              for role in ROLES}
    try:
        deps = Dependencies(conf, hub=hub, keys=keys)
        app = create_app(deps, routers=[read_routes], services=[deps, ProjectionService(deps)])
        with TestClient(app) as client:
            yield Api(client=client, hub=hub, keys=keys, tokens=tokens)
    finally:
        keys.close()
        hub.close()


def cmd(api: Api, name: str, body: dict[str, Any], role: str = "admin") -> Any:
    return api.post(f"/commands/{name}", body, role=role)


def read(api: Api, path: str, role: str = "admin", **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.auth(role))


def test_account_commands_validate_at_the_door_and_refuse_cycles(api: Api) -> None:
    bad_vat = cmd(api, "open-account", {"name": "X", "vat_number": "GB123456789"})
    assert bad_vat.status_code == 422 and "not a valid VAT number" in bad_vat.json()["reason"]
    bad_postcode = cmd(api, "open-account", {"name": "X", "addresses": [
        {"postcode": "12345", "country": "GB"}]})
    assert bad_postcode.status_code == 422 and "not a postcode of GB" in bad_postcode.json()[
        "reason"]
    bad_phone = cmd(api, "register-customer", {"name": "Bob", "contact_points": [
        {"kind": "phone", "value": "+1 555 0100"}]})
    assert bad_phone.status_code == 422 and "not a valid phone number" in bad_phone.json()[
        "detail"]
    assert cmd(api, "open-account", {"name": "X"}, role="analyst").status_code == 403

    group = cmd(api, "open-account", {"name": "Engines Group", "source_key": "acc-group"})
    again = cmd(api, "open-account", {"name": "Engines Group", "source_key": "acc-group"})
    assert group.status_code == 201 and again.status_code == 200 and again.json()["duplicate"]
    gid = group.json()["customer_id"]
    sub = cmd(api, "open-account", {"name": "Engines Ltd", "vat_number": "GB 980 7806 84",
                                    "parent_id": gid, "source_key": "acc-sub"}).json()
    cycle = cmd(api, "set-account-parent", {"account_id": gid, "parent_id": sub["customer_id"]})
    assert cycle.status_code == 409 and "cycle" in cycle.json()["detail"]
    missing = cmd(api, "set-account-parent", {"account_id": gid,
                                              "parent_id": "00000000-0000-4000-8000-000000000000"})
    assert missing.status_code == 404


def test_contacts_their_timeline_and_partner_scope(api: Api) -> None:
    acc = cmd(api, "open-account", {"name": "Scoped Ltd", "source_key": "acc-scoped"}).json()
    aid = acc["customer_id"]
    ada = cmd(api, "register-customer", {"name": "Ada Scoped"}).json()["customer_id"]
    linked = cmd(api, "link-contact", {"account_id": aid, "customer_id": ada, "role": "buyer",
                                       "joined_at": "2026-01-05T09:00:00+00:00"})
    assert linked.status_code == 201, linked.text
    overlap = cmd(api, "link-contact", {"account_id": aid, "customer_id": ada})
    assert overlap.status_code == 409 and "already acts" in overlap.json()["detail"]
    cmd(api, "log-call", {"customer_id": ada, "call_id": "acc-call-1",
                          "occurred_at": "2026-02-01T10:00:00+00:00"})
    cmd(api, "log-call", {"customer_id": ada, "call_id": "acc-call-0",
                          "occurred_at": "2025-12-01T10:00:00+00:00"})  # before joining
    note = cmd(api, "add-note", {"customer_id": ada, "text": "internal only",
                                 "occurred_at": "2026-02-02T10:00:00+00:00"}).json()

    detail = read(api, f"/accounts/{aid}", min_position=note["position"])
    assert detail.status_code == 200
    (period,) = detail.json()["contacts"]
    assert period["customer_id"] == ada and period["left_at"] is None
    page = read(api, f"/accounts/{aid}/timeline", "agent", min_position=note["position"]).json()
    calls = [i["kind"] for i in page["items"] if i["customer_id"] == ada]
    assert calls.count("call") == 1 and "note" in calls  # the call before joining is not there
    assert read(api, f"/customers/{ada}/accounts", "agent").json()[0]["account_id"] == aid

    assert read(api, f"/accounts/{aid}", "partner").status_code == 404
    assigned = cmd(api, "assign-account-partner", {"account_id": aid, "partner_id": "p-1"})
    seen = read(api, f"/accounts/{aid}/timeline", "partner",
                min_position=assigned.json()["position"]).json()
    assert seen["items"] and "note" not in {i["kind"] for i in seen["items"]}
    assert all(i["actor"] is None for i in seen["items"])
    listed = read(api, "/accounts", "partner").json()["items"]
    assert [a["account_id"] for a in listed] == [aid]

    first = read(api, f"/accounts/{aid}/timeline", limit=1).json()
    second = read(api, f"/accounts/{aid}/timeline", limit=1, cursor=first["next_cursor"]).json()
    assert second["items"][0]["position"] != first["items"][0]["position"]
    other = read(api, f"/accounts/{ada}/timeline", cursor=first["next_cursor"])
    assert other.status_code == 400


def test_quality_routes_are_for_analysts_and_admins(api: Api) -> None:
    one = cmd(api, "register-customer", {"name": "Grace Hopper", "company": "Navy Ltd",
                                         "contact_points": [{"kind": "email",
                                                             "value": "grace@example.com"}]})
    two = cmd(api, "register-customer", {"name": "Grace Hoppper", "company": "Navy Ltd",
                                         "contact_points": [{"kind": "email",
                                                             "value": "grace+x@example.com"}]})
    a, b = sorted((one.json()["customer_id"], two.json()["customer_id"]))
    assert read(api, "/quality/duplicates", "agent").status_code == 403
    found = read(api, "/quality/duplicates", "analyst", min_position=two.json()["position"])
    pair = next(p for p in found.json()["pairs"] if {p["first_id"], p["second_id"]} == {a, b})
    assert pair["score"] > 0.95 and any("email" in r for r in pair["reasons"])
    rejected = cmd(api, "reject-duplicate", {"first_id": a, "second_id": b}, role="service")
    assert rejected.status_code == 201
    again = read(api, "/quality/duplicates", "analyst", min_position=rejected.json()["position"])
    assert not [p for p in again.json()["pairs"] if {p["first_id"], p["second_id"]} == {a, b}]
    report = read(api, "/quality/completeness", "analyst", months=3).json()
    assert report["consent"]["with_valid_consent"] == 0 and report["owners"]


def test_cli_accounts_and_quality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    # In-process (``main``): a subprocess per call cost ~8 s each on a busy machine; the
    # CLI's own subprocess behaviour is covered by tests/e2e/test_cli.py.
    for name, value in store_env("sqlite", tmp_path / "data").items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    def ok(*args: str) -> list[Any]:
        code, out, err = run(*args)
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    code, _, err = run("account", "open", "--name", "X", "--vat-number", "GB123456789")
    assert code == 2 and "not a valid VAT number" in err
    (opened,) = ok("account", "open", "--name", "Acme Ltd", "--vat-number", VAT,
                   "--source-key", "acme")
    aid = opened["customer_id"]
    (ada,) = ok("customer", "create", "--name", "Ada Lovelace", "--email", "ada@example.com")
    ok("account", "link", "--account-id", aid, "--customer-id", ada["customer_id"],
       "--role", "buyer", "--joined-at", "2026-01-01T00:00:00+00:00")
    code, _, err = run("account", "link", "--account-id", aid, "--customer-id",
                       ada["customer_id"])
    assert code == 3 and "already acts" in err
    code, _, err = run("account", "show", "00000000-0000-4000-8000-000000000000")
    assert code == 4 and "no account" in err
    shown = ok("account", "show", aid, "--json")[0]
    assert shown["contacts"][0]["customer_id"] == ada["customer_id"]
    rows = ok("account", "timeline", aid, "--json", "--all")
    assert {"account_opened", "account_contact_joined"} <= {r["kind"] for r in rows}
    code, out, _ = run("account", "list", "--csv")
    assert code == 0 and out.splitlines()[0].startswith("ACCOUNT,NAME")
    assert ok("quality", "duplicates", "--json") == []
    (report,) = ok("quality", "completeness", "--json")
    assert report["consent"] == {"with_valid_consent": 0, "without_valid_consent": 1,
                                 "withdrawn_or_expired": 0}
