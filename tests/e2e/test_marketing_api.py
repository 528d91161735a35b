"""Marketing's HTTP routes end to end: each command records its event, the read routes answer
what their ``*Public`` schemas say (with OpenAPI examples) to the roles that may read them,
and the hub's signed links refuse forgeries, foreign kinds and stale confirmations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import TypeAdapter

from channels.web.marketing import LinkError, MarketingLinks
from domain.marketing import check_rule
from projections import registry
from projections.engine import Worker
from read_api import marketing as rm
from tests.conftest import store_env
from tests.support.api import Api, running_api
from tests.support.mail import all_events
from tests.support.marketing import seed_marketing
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.read_side import read_routes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, Any]]]:
    env = store_env("sqlite", tmp_path_factory.mktemp("marketing-api") / "data")
    with running_api(env, (read_routes,)) as api:
        ids = {k: str(v) for k, v in seed_marketing(api.hub).items()}
        deps = Dependencies(settings_mod.load(env), hub=api.hub)
        db = deps.read_store.connect()
        try:
            Worker(db, deps.event_source(), [(p, None) for p in registry.select(None)]).catch_up()
        finally:
            db.close()
        yield api, ids


def _get(api: Api, path: str, role: str = "marketing", **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.auth(role))


def test_each_marketing_command_route_records_its_event(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    campaign, segment = str(uuid4()), str(uuid4())
    steps = [
        ("give-consent", {"customer_id": ids["dot"], "consent_channel": "phone",
                          "purpose": "marketing", "evidence_kind": "call",
                          "evidence_id": "call-9"}, "ConsentGiven"),
        ("withdraw-consent", {"customer_id": ids["dot"], "consent_channel": "phone",
                              "purpose": "marketing", "source_key": "dot-says-no"},
         "ConsentWithdrawn"),
        ("give-consent", {"customer_id": ids["dot"], "consent_channel": "email",
                          "purpose": "newsletter", "evidence_kind": "call",
                          "evidence_id": "call-10", "expires_at": "2026-04-01T00:00:00Z",
                          "occurred_at": "2026-03-01T00:00:00Z"},
         "ConsentGiven"),
        ("expire-consents", {"customer_id": ids["dot"], "as_of": "2026-04-02T00:00:00Z"},
         "ConsentExpired"),
        ("define-segment", {"segment_id": segment, "name": "Lost",
                            "rule": {"lifecycle": ["lost"]}}, "Defined"),
        ("define-campaign", {"campaign_id": campaign, "name": "Autumn", "channel": "web",
                             "budget": "10", "currency": "EUR", "starts_on": "2026-09-01",
                             "ends_on": "2026-09-30", "code": "AUTUMN"}, "Defined"),
        ("launch-campaign", {"campaign_id": campaign}, "Launched"),
        ("close-campaign", {"campaign_id": campaign}, "Closed"),
    ]
    for name, body, event in steps:
        result = api.post(f"/commands/{name}", body, role="marketing")
        assert result.status_code == 201, (name, result.text)
        (recorded,) = [e for e in all_events(api.hub)
                       if str(getattr(e, "event_id", "")) == result.json()["event_ids"][0]]
        assert type(recorded).__name__ == event
    refused = api.post("/commands/launch-campaign", {"campaign_id": campaign,
                                                     "source_key": "again"}, role="marketing")
    assert refused.status_code == 409 and "closed" in refused.json()["detail"]
    assert api.post("/commands/define-segment", {"name": "x", "rule": {"spend": 1}},
                    role="marketing").status_code == 409
    assert api.post("/commands/launch-campaign", {"campaign_id": str(uuid4())},
                    role="marketing").status_code == 404
    no_links = api.post("/commands/send-campaign", {"campaign_id": campaign}, role="marketing")
    assert no_links.status_code == 404  # the link-signing routes are mounted with the channels


def test_read_routes_answer_their_schemas_to_their_roles(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    spring, segment, bob = ids["spring"], ids["segment"], ids["bob"]
    checks: list[tuple[str, Any, dict[str, Any]]] = [
        ("/marketing/campaigns", list[rm.CampaignPublic], {}),
        (f"/marketing/campaigns/{spring}", rm.CampaignPublic, {}),
        (f"/marketing/campaigns/{spring}/performance", rm.PerformancePublic, {}),
        (f"/marketing/campaigns/{spring}/events", rm.FigureEventsPublic,
         {"metric": "suppressed", "limit": 1}),
        ("/marketing/segments", list[rm.SegmentPublic], {}),
        (f"/marketing/segments/{segment}/members", rm.MembersPublic, {"as_of": "2025-12-01"}),
        ("/marketing/consent", list[rm.ConsentTotalPublic], {"as_of": "2025-12-01"}),
        (f"/marketing/customers/{bob}/consent", rm.CustomerConsentPublic, {}),
        (f"/marketing/customers/{ids['ada']}/attributions", list[rm.AttributionPublic], {}),
    ]
    for path, schema, params in checks:
        answer = _get(api, path, **params)
        assert answer.status_code == 200, (path, answer.text)
        TypeAdapter(schema).validate_python(answer.json(), strict=False)
    page = _get(api, f"/marketing/campaigns/{spring}/events", metric="suppressed", limit=1).json()
    assert len(page["items"]) == 1 and page["next_after"] == page["items"][0]["event_id"]
    rest = _get(api, f"/marketing/campaigns/{spring}/events", metric="suppressed",
                after=page["next_after"]).json()
    assert len(rest["items"]) == 1 and rest["next_after"] is None
    members = _get(api, f"/marketing/segments/{segment}/members", as_of="2025-12-01").json()
    assert (members["count"], members["members"]) == (0, [])  # withdrawn, or not a prospect
    assert _get(api, f"/marketing/campaigns/{spring}/events", metric="nope").status_code == 400
    assert _get(api, f"/marketing/campaigns/{uuid4()}/performance").status_code == 404
    assert _get(api, f"/marketing/segments/{uuid4()}/members").status_code == 404
    assert _get(api, "/marketing/campaigns", "analyst").status_code == 200
    for role in ("agent", "partner", "adapter", "auditor"):
        assert _get(api, "/marketing/campaigns", role).status_code == 403, role
    assert _get(api, f"/marketing/customers/{bob}/consent", "service").status_code == 200
    assert _get(api, f"/marketing/customers/{bob}/consent", "analyst").status_code == 403
    assert _get(api, f"/marketing/customers/{bob}/attributions", "agent").status_code == 403


def test_openapi_documents_the_marketing_routes_with_examples(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, _ = world
    spec = api.client.get("/openapi.json").json()
    for path in ("/marketing/campaigns/{campaign_id}/performance",
                 "/marketing/campaigns/{campaign_id}/events",
                 "/marketing/segments/{segment_id}/members",
                 "/marketing/customers/{customer_id}/consent"):
        assert path in spec["paths"], path
    for schema in ("CampaignPublic", "PerformancePublic", "FigureEventsPublic", "MembersPublic",
                   "CustomerConsentPublic"):
        assert spec["components"]["schemas"][schema].get("examples"), schema
    for name in ("give-consent", "define-campaign", "define-segment"):
        body = spec["paths"][f"/commands/{name}"]["post"]["requestBody"]
        assert body["content"]["application/json"]["examples"]["example"]["value"], name
    # The segment rule language is shown with an RFM rule, and every example is a valid rule.
    define = spec["paths"]["/commands/define-segment"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]["example"]["value"]
    rules = [define["rule"], *(e["rule"] for e in spec["components"]["schemas"][
        "SegmentPublic"]["examples"])]
    for rule in rules:
        check_rule(rule)
    assert sum('"rfm"' in json.dumps(r) for r in rules) >= 2


def test_signed_links_refuse_forgeries_other_kinds_and_stale_confirmations(
        tmp_path: Path) -> None:
    links = MarketingLinks(secret="s" * 32, base_url="https://hub.example")
    customer, campaign = uuid4(), uuid4()
    url = links.unsubscribe_url(customer, campaign, "newsletter")
    token = url.rsplit("/", 1)[1]
    assert links.unsubscribe(token).purpose == "newsletter"
    with pytest.raises(LinkError):
        MarketingLinks(secret="t" * 32, base_url="").unsubscribe(token)  # another hub's secret
    confirm = links.confirm_url(customer, campaign, now=1000.0).rsplit("/", 1)[1]
    with pytest.raises(LinkError):
        links.unsubscribe(confirm)  # a confirmation is not an unsubscribe
    assert links.confirmation(confirm, now=1000.0 + 3600).request_id == campaign
    with pytest.raises(LinkError) as stale:
        links.confirmation(confirm, now=1000.0 + 15 * 24 * 3600)
    assert stale.value.status == 410
    with pytest.raises(LinkError) as unset:
        MarketingLinks(secret="s" * 32, base_url="").unsubscribe_url(customer, campaign, "x")
    assert unset.value.status == 409
