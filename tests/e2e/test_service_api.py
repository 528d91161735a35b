"""Service end to end over HTTP: every case, complaint, CSAT, contract and product route
records its event (refusals 409, bad input 422, unknown customer 404, roles 403), and the
service read routes show the queue, the case with its steps and SLA timers, suggestions
and statistics (partner keys see only their customers' cases)."""

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from channels.web import service_commands
from tests.conftest import store_env
from tests.support.api import Api
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub

T = "2026-11-23T09:00:00+00:00"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The served app: command and read routes, the read models kept up to date."""
    conf = settings_mod.load(store_env("sqlite", tmp_path_factory.mktemp("service") / "data"))
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {role: keys.create(role, "p-1" if role == "partner" else None)[1]
              for role in ROLES}
    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=[read_routes], services=[ProjectionService(deps)])
    try:
        with TestClient(app) as client:
            yield Api(client=client, hub=hub, keys=keys, tokens=tokens)
    finally:
        keys.close()
        hub.close()


def post(api: Api, name: str, body: dict[str, Any], role: str = "service") -> Any:
    return api.post(f"/commands/{name}", body, role=role)


def get(api: Api, path: str, role: str = "service", **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.auth(role))


def register(api: Api, email: str) -> str:
    r = post(api, "register-customer", {"name": "Ada", "source_key": f"reg:{email}",
                                        "contact_points": [{"kind": "email", "value": email}]})
    assert r.status_code == 201, r.text
    return str(r.json()["customer_id"])


def email(api: Api, message_id: str, sender: str, reply_to: str | None = None) -> Any:
    body: dict[str, Any] = {"message_id": message_id, "from_address": sender,
                            "to": ["help@hub.example"], "subject": "Boiler", "occurred_at": T}
    if reply_to:
        body |= {"in_reply_to": reply_to, "references": [reply_to]}
    r = post(api, "record-email", body, role="adapter")
    assert r.status_code == 201, r.text
    return r.json()


def test_every_service_route_records_its_event_and_reads_show_it(api: Api) -> None:
    cid = register(api, "ada@example.com")
    first = email(api, "<q1@example.com>", "ada@example.com")
    case = str(uuid4())
    product, contract = str(uuid4()), str(uuid4())
    ids = {"customer_id": cid, "case_id": case}
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("install-product", {"customer_id": cid, "product_id": product,
                             "product_code": "boiler-x", "serial_number": "SN-1"},
         "InstalledProductRecorded"),
        ("add-contract", {"customer_id": cid, "contract_id": contract,
                          "starts_on": "2026-01-01", "ends_on": "2026-12-31",
                          "covered_products": ["boiler-x"]}, "ServiceContractAdded"),
        ("open-case", {**ids, "case_kind": "complaint", "category": "repair",
                       "subject": "Boiler cold", "origin_event_id": first["event_ids"][0],
                       "product_id": product, "severity": "major",
                       "cause_category": "faulty-part", "occurred_at": T}, "CaseOpened"),
        ("assign-case", {**ids, "queue": "default", "agent": "jo"}, "CaseAssigned"),
        ("reprioritise-case", {**ids, "priority": "high"}, "CaseReprioritised"),
        ("case-note", {**ids, "text": "Engineer booked", "visibility": "shared"},
         "CaseNoteAdded"),
        ("wait-on-customer", {**ids, "reason": "Which day suits?"}, "CaseWaitingOnCustomer"),
        ("resume-case", ids, "CaseResumed"),
        ("offer-compensation", {**ids, "amount": "40.00"}, "ComplaintCompensationOffered"),
        ("answer-compensation", {**ids, "accepted": False}, "ComplaintCompensationAnswered"),
        ("resolve-case", {**ids, "resolution_code": "part-replaced"}, "CaseResolved"),
        ("reopen-case", {**ids, "reason": "Cold again"}, "CaseReopened"),
        ("resolve-case", {**ids, "resolution_code": "boiler-replaced",
                          "source_key": "second"}, "CaseResolved"),
        ("schedule-follow-up", {**ids, "on": "2099-01-05"}, "ComplaintFollowUpScheduled"),
        ("record-satisfaction", {**ids, "score": 3, "comment": "Took long"},
         "CaseSatisfactionRecorded"),
        ("close-case", ids, "CaseClosed"),
        ("end-contract", {"customer_id": cid, "contract_id": contract, "ends_on": "2026-11-30"},
         "ServiceContractEnded"),
        ("remove-product", {"customer_id": cid, "product_id": product},
         "InstalledProductRemoved"),
    ]
    routes = {name for name, *_ in steps} | {"link-touchpoint"}
    assert routes == set(service_commands.COMMANDS)
    position = 0
    for name, body, event in steps:
        r = post(api, name, body)
        assert r.status_code == 201, (name, r.text)
        result = r.json()
        position = max(position, result["position"])
        types = [type(e).__name__ for e in api.hub.stream(UUID(cid))]
        assert types[result["versions"][-1]] == event, name

    other_case = str(uuid4())
    r = post(api, "open-case", {"customer_id": cid, "case_id": other_case, "category": "billing",
                                "subject": "Invoice"})
    late = email(api, "<late@example.com>", "ada@example.com")
    r = post(api, "link-touchpoint", {"customer_id": cid, "case_id": other_case,
                                      "event_id": late["event_ids"][0]})
    assert r.status_code == 201, r.text

    detail = get(api, f"/service/cases/{case}", min_position=r.json()["position"],
                 as_of="2026-11-30T12:00:00+00:00")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["status"] == "closed" and body["first_contact"] is False
    assert body["csat_score"] == 3 and body["compensation"] == "declined"
    assert body["contract_id"] == contract and body["outside_contract"] is False
    assert [t["name"] for t in body["timers"]] == ["first_response", "resolution"]
    assert [s["kind"] for s in body["steps"]][:2] == ["CaseOpened", "CaseAssigned"]
    queue = get(api, "/service/queue", as_of="2026-11-30T12:00:00+00:00").json()
    assert [i["case_id"] for i in queue["items"]] == [other_case]
    stats = get(api, "/service/statistics", role="analyst", **{
        "from": "2026-11-01T00:00:00+00:00", "to": "2026-12-01T00:00:00+00:00",
        "period": "month"})
    assert stats.status_code == 200, stats.text
    assert stats.json()["items"][0]["complaints_by_cause"] == {"faulty-part": 1}
    assert get(api, f"/customers/{cid}/cases").json()["cases"][0]["case_id"]


def test_refusals_bad_input_unknown_customers_roles_and_partner_scope(api: Api) -> None:
    cid = register(api, "bo@example.com")
    case = str(uuid4())
    ids = {"customer_id": cid, "case_id": case}
    assert post(api, "open-case", {**ids, "category": "billing", "subject": "x"}).status_code \
        == 201
    r = post(api, "resume-case", ids)
    assert r.status_code == 409 and "cannot resume" in r.json()["detail"]
    r = post(api, "resolve-case", {**ids, "case_id": str(uuid4()), "resolution_code": "x"})
    assert r.status_code == 409 and "no case" in r.json()["detail"]
    assert post(api, "record-satisfaction", {**ids, "score": 9}).status_code == 422
    r = post(api, "assign-case", {**ids, "customer_id": str(uuid4()), "queue": "q"})
    assert r.status_code == 404
    assert post(api, "open-case", {**ids, "category": "x", "subject": "y"},
                role="marketing").status_code == 403
    assert get(api, "/service/queue", role="marketing").status_code == 403
    assert get(api, f"/service/cases/{case}", role="partner").status_code == 404
    assert get(api, f"/service/cases/{uuid4()}").status_code in (404, 503)
    r = get(api, "/service/statistics", **{"from": "2020-01-01T00:00:00+00:00",
                                          "to": "2026-01-01T00:00:00+00:00"})
    assert r.status_code == 400 and "days" in r.json()["detail"]
