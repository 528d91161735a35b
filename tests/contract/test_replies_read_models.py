"""The auto-replies and territories read models with their policies over the real write
model, on SQLite and PostgreSQL alike: a new case from an email or a web form is
acknowledged once (a bounced address is not, and says why), a reassigned territory's
open opportunity moves once, erasure empties the personal rows; a rebuild equals the
live model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from commands import email_messages as em
from commands import messages as m
from commands import replies as rc
from commands import sales as cs
from commands import service as sc
from commands import territories as tc
from domain.customer import Customer
from projections import registry
from projections.auto_replies.view import AutoRepliesView
from projections.territories.view import TerritoriesView
from replays.rebuild import rebuild
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.work_policies import WorkPolicies

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
WORK_FILE = """
[[territories]]
name = "berlin"
prefixes = ["DE-10", "DE-12"]
owner = "sam"
[[territories]]
name = "austria"
prefixes = ["AT"]
owner = "kim"
"""


@pytest.fixture(params=["sqlite", "postgres"])
def deps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dependencies]:
    (tmp_path / "work.toml").write_text(WORK_FILE)
    env = {**request.getfixturevalue(f"{request.param}_env"),
           "TOUCHSTREAM_WORK_FILE": str(tmp_path / "work.toml"),
           "TOUCHSTREAM_WORK_AUTO_ACK_FROM": "support@shop.example"}
    found = bootstrap(env)
    yield found
    found.close()


def _at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def _email_case(deps: Dependencies, sender: str, n: int) -> tuple[object, object]:
    hub = deps.hub
    hub.execute(m.RecordEmail(message_id=f"<in{n}@example.com>", from_address=sender,
                              to=["support@shop.example"], subject=f"Question {n}",
                              body_text="Hello", occurred_at=_at(-2)))
    cid = hub.find_by_contact("email", sender)
    origin = next(e for e in hub.stream(cid) if isinstance(e, Customer.EmailRecorded))
    hub.execute(sc.OpenCase(customer_id=cid, case_id=uuid4(), category="general", subject="x",
                            origin_event_id=origin.event_id, occurred_at=_at(-1)))
    return cid, origin


def test_acknowledgements_territory_moves_erasure_and_rebuild(deps: Dependencies) -> None:
    hub = deps.hub
    hub.execute(rc.SaveTemplate(name="auto-ack", language="en", subject="Re: {{ subject }}",
                                body_text="Dear {{ customer.name }}, case {{ case.reference }}."))
    ada, _ = _email_case(deps, "ada@example.com", 1)
    # bob's address bounced before his case: no acknowledgement, and the reason recorded
    hub.execute(m.RecordEmail(message_id="<b0@example.com>", from_address="bob@example.com",
                              to=["support@shop.example"], subject="Hi", body_text="x",
                              occurred_at=_at(-30)))
    hub.execute(em.RecordEmailBounce(original_message_id="<x@shop.example>",
                                     recipient="bob@example.com", action="failed",
                                     status="5.1.1", report_message_id="<dsn1@mx>",
                                     occurred_at=_at(-20)))
    bob, _ = _email_case(deps, "bob@example.com", 2)
    # carl's case comes from a web form: answered at his email address
    hub.execute(m.RecordWebForm(form_name="contact", submission_id="s1", email="carl@example.com",
                                fields={"message": "Call me"}, occurred_at=_at(-2)))
    carl = hub.find_by_contact("email", "carl@example.com")
    form = next(e for e in hub.stream(carl) if isinstance(e, Customer.WebFormSubmitted))
    hub.execute(sc.OpenCase(customer_id=carl, case_id=uuid4(), category="general",
                            subject="Form", origin_event_id=form.event_id, occurred_at=_at(-1)))
    # territories: dora in Berlin with an open deal, eve in Austria with a won one
    dora, eve = uuid4(), uuid4()
    for cid, country, postcode in ((dora, "DE", "10115"), (eve, "AT", "1010")):
        hub.execute(m.RegisterCustomer(customer_id=cid, name="D", occurred_at=_at(-100)))
        hub.execute(m.ChangeProfile(customer_id=cid, changes={"country": country,
                                                             "postcode": postcode}))
    deal, won = uuid4(), uuid4()
    hub.execute(cs.OpenOpportunity(customer_id=dora, opportunity_id=deal, title="Boilers",
                                   amount="1200.00", currency="EUR",
                                   expected_close=date(2027, 1, 1), owner="sam",
                                   occurred_at=_at(-50)))
    hub.execute(cs.OpenOpportunity(customer_id=eve, opportunity_id=won, title="Pumps",
                                   amount="300.00", currency="EUR",
                                   expected_close=date(2027, 1, 1), owner="kim",
                                   occurred_at=_at(-50)))
    hub.execute(cs.WinOpportunity(customer_id=eve, opportunity_id=won, order_reference="O-1",
                                  occurred_at=_at(-40)))
    hub.execute(tc.ReassignTerritory(territory="berlin", to_owner="lee", occurred_at=_at(-3)))

    policies = WorkPolicies(deps, clock=lambda: NOW)
    first = policies.run_once()
    assert (first.acknowledged, first.withheld, first.territory_moves, first.refused) == (
        2, 1, 1, [])
    again = policies.run_once()
    assert (again.acknowledged, again.withheld, again.territory_moves) == (0, 0, 0)
    outcomes = {o["customer_id"]: o["outcome"] for o in AutoRepliesView(
        deps.read_store).outcomes()}
    assert outcomes == {str(ada): "sent", str(bob): "bounced", str(carl): "sent"}
    carl_ack = [e for e in hub.stream(carl) if isinstance(e, Customer.EmailQueued)]
    assert [e.to for e in carl_ack] == [["carl@example.com"]]
    assert [e.owner for e in hub.stream(dora) if type(e).__name__ == "OpportunityChanged"] == [
        "lee"]
    defs = policies.territory_moves.deps.hub.context.policies["work"].territories
    table = {t["territory"]: t for t in TerritoriesView(deps.read_store).territories(defs)}
    assert (table["berlin"]["owner"], table["berlin"]["open_opportunities"],
            table["berlin"]["pipeline"], table["berlin"]["owners"]) == (
        "lee", 1, {"EUR": "1200.00"}, ["lee"])
    assert (table["austria"]["owner"], table["austria"]["open_opportunities"]) == ("kim", 0)

    deps.eraser.erase(ada, reason="test", actor="privacy")
    policies.run_once()
    assert str(ada) not in {c for _, c, _ in AutoRepliesView(deps.read_store).some_inbound(10)}
    source = deps.event_source()
    try:
        results = rebuild(deps.read_store, source, [registry.get("auto_replies"),
                                                    registry.get("territories")],
                          verify_only=True, batch=5)
    finally:
        source.close()
    for result in results:
        assert result.comparison.equal, [d.describe() for d in result.comparison.differences]
