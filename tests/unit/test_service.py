"""Service cases through the write model on the in-memory store: every transition and its
refusals, derived first-contact resolution, the email thread joining its case by itself
(once, in the email's own save), complaints, CSAT and contracts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from commands import messages as m
from commands import service as sc
from commands.hub import Hub
from domain import service as s
from domain.errors import TouchpointUnknownError

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: NOW,
            max_future_skew=timedelta(minutes=5))
    yield h
    h.close()


def customer(hub: Hub) -> UUID:
    return UUID(hub.execute(m.RegisterCustomer(
        name="Ada", contact_points=[m.ContactPointIn(kind="email", value="ada@example.com")],
        source_key=f"reg:{uuid4()}")).customer_id)


def email(hub: Hub, message_id: str, *, reply_to: str | None = None,
          direction: str = "inbound") -> Any:
    refs = [reply_to] if reply_to else []
    return hub.execute(m.RecordEmail(
        message_id=message_id, direction=direction, in_reply_to=reply_to, references=refs,
        from_address="ada@example.com" if direction == "inbound" else "help@hub.example",
        to=["help@hub.example"] if direction == "inbound" else ["ada@example.com"],
        subject="Broken", body_text="It broke", occurred_at=NOW))


def events(hub: Hub, cid: UUID) -> list[Any]:
    return [e for e in hub.stream(cid) if type(e) in s.EVENTS]


def run(hub: Hub, cmd: Any) -> Any:
    return hub.execute(cmd)


def open_case(hub: Hub, cid: UUID, **kw: Any) -> UUID:
    case_id = kw.pop("case_id", uuid4())
    run(hub, sc.OpenCase(customer_id=cid, case_id=case_id, category="billing",
                         subject="Invoice wrong", **kw))
    return case_id


def test_a_case_goes_through_its_life_and_first_contact_resolution_is_derived(hub: Hub) -> None:
    cid = customer(hub)
    case = open_case(hub, cid, channel="phone", priority="high")
    run(hub, sc.AssignCase(customer_id=cid, case_id=case, queue="billing", agent="jo"))
    run(hub, sc.AddCaseNote(customer_id=cid, case_id=case, text="checked", visibility="internal"))
    run(hub, sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="credit-note"))
    resolved = events(hub, cid)[-1]
    assert isinstance(resolved, s.CaseResolved) and resolved.first_contact is True
    run(hub, sc.ReopenCase(customer_id=cid, case_id=case, reason="still wrong"))
    run(hub, sc.WaitOnCustomer(customer_id=cid, case_id=case, reason="need the invoice"))
    run(hub, sc.ResumeCase(customer_id=cid, case_id=case))
    run(hub, sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="refund"))
    again = events(hub, cid)[-1]
    assert isinstance(again, s.CaseResolved) and again.first_contact is False
    run(hub, sc.CloseCase(customer_id=cid, case_id=case))
    kinds = [type(e).__name__ for e in events(hub, cid)]
    assert kinds == ["CaseOpened", "CaseAssigned", "CaseNoteAdded", "CaseResolved",
                     "CaseReopened", "CaseWaitingOnCustomer", "CaseResumed", "CaseResolved",
                     "CaseClosed"]
    assert hub.customer(cid).area("service")["cases"][str(case)]["status"] == "closed"


@pytest.mark.parametrize(("step", "reason"), [
    (lambda c, k: sc.ResumeCase(customer_id=c, case_id=k), "cannot resume"),
    (lambda c, k: sc.ReopenCase(customer_id=c, case_id=k), "cannot reopen"),
    (lambda c, k: sc.CloseCase(customer_id=c, case_id=k), "cannot close"),
    (lambda c, k: sc.RecordSatisfaction(customer_id=c, case_id=k, score=4),
     "cannot record satisfaction"),
    (lambda c, k: sc.OfferCompensation(customer_id=c, case_id=k, amount="10"), "not a complaint"),
    (lambda c, k: sc.LinkTouchpoint(customer_id=c, case_id=k, event_id=uuid4()), "no touchpoint"),
])
def test_transitions_refused_on_an_open_case(hub: Hub, step: Any, reason: str) -> None:
    cid = customer(hub)
    case = open_case(hub, cid)
    with pytest.raises((s.CaseStateError, TouchpointUnknownError), match=reason):
        run(hub, step(cid, case))


def test_refusals_after_resolution_and_on_unknown_cases(hub: Hub) -> None:
    cid = customer(hub)
    case = open_case(hub, cid)
    run(hub, sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="fixed"))
    for cmd in (sc.WaitOnCustomer(customer_id=cid, case_id=case),
                sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="x"),
                sc.AssignCase(customer_id=cid, case_id=case, queue="q")):
        with pytest.raises(s.CaseStateError):
            run(hub, cmd)
    with pytest.raises(s.CaseUnknownError, match="no case"):
        run(hub, sc.ResolveCase(customer_id=cid, case_id=uuid4(), resolution_code="x"))
    with pytest.raises(s.CaseStateError, match="exists already"):
        run(hub, sc.OpenCase(customer_id=cid, case_id=case, category="x", subject="y",
                             source_key="another"))
    with pytest.raises(ValidationError):
        sc.RecordSatisfaction(customer_id=cid, case_id=case, score=6)
    with pytest.raises(s.CaseStateError, match="belong to complaints"):
        open_case(hub, cid, severity="major")


def test_an_email_reply_joins_its_case_once_and_resumes_it(hub: Hub) -> None:
    cid = customer(hub)
    first = email(hub, "<q1@example.com>")
    origin = UUID(first.event_ids[0])
    case = open_case(hub, cid, origin_event_id=origin)
    opened = events(hub, cid)[0]
    assert opened.case_channel == "email" and opened.thread_id
    # one case per touchpoint: the same request again is the first one's result
    again = run(hub, sc.OpenCase(customer_id=cid, case_id=uuid4(), category="billing",
                                 subject="dup", origin_event_id=origin))
    assert again.duplicate
    run(hub, sc.WaitOnCustomer(customer_id=cid, case_id=case, reason="which invoice?"))
    reply = email(hub, "<r1@example.com>", reply_to="<q1@example.com>")
    assert len(reply.event_ids) == 3  # the email, its link, the resume: one save
    email(hub, "<r1@example.com>", reply_to="<q1@example.com>")  # delivered twice
    links = [e for e in events(hub, cid) if isinstance(e, s.CaseTouchpointLinked)]
    assert [(l.touchpoint_event_id, l.automatic) for l in links] == [(reply.event_ids[0], True)]
    assert isinstance(events(hub, cid)[-1], s.CaseResumed)
    other = email(hub, "<new@example.com>")  # another thread: not joined
    assert len(other.event_ids) == 1
    with pytest.raises(s.CaseStateError, match="already belongs"):
        run(hub, sc.LinkTouchpoint(customer_id=cid, case_id=open_case(hub, cid),
                                   event_id=UUID(reply.event_ids[0])))
    state = hub.customer(cid).area("service")["cases"][str(case)]
    assert state["inbound"] == 2
    run(hub, sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="answered"))
    assert events(hub, cid)[-1].first_contact is False


def test_complaint_compensation_follow_up_and_csat(hub: Hub) -> None:
    cid = customer(hub)
    case = open_case(hub, cid, case_kind="complaint", severity="major",
                     cause_category="late-delivery")
    with pytest.raises(s.CaseStateError, match="no compensation offer"):
        run(hub, sc.AnswerCompensation(customer_id=cid, case_id=case, accepted=True))
    run(hub, sc.OfferCompensation(customer_id=cid, case_id=case, amount="25.00"))
    with pytest.raises(s.CaseStateError, match="has compensation offered"):
        run(hub, sc.OfferCompensation(customer_id=cid, case_id=case, amount="30.00"))
    run(hub, sc.AnswerCompensation(customer_id=cid, case_id=case, accepted=True))
    with pytest.raises(s.CaseStateError, match="after resolution"):
        run(hub, sc.ScheduleFollowUp(customer_id=cid, case_id=case, on=date(2026, 12, 1)))
    run(hub, sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="refund"))
    with pytest.raises(s.CaseStateError, match="in the past"):
        run(hub, sc.ScheduleFollowUp(customer_id=cid, case_id=case, on=date(2026, 1, 1)))
    run(hub, sc.ScheduleFollowUp(customer_id=cid, case_id=case, on=date(2026, 12, 1)))
    run(hub, sc.RecordSatisfaction(customer_id=cid, case_id=case, score=4, comment="ok"))
    assert run(hub, sc.RecordSatisfaction(customer_id=cid, case_id=case, score=1)).duplicate
    with pytest.raises(s.CaseStateError, match="already"):
        run(hub, sc.RecordSatisfaction(customer_id=cid, case_id=case, score=1,
                                       source_key="other-survey"))
    offered = next(e for e in events(hub, cid) if isinstance(e, s.ComplaintCompensationOffered))
    assert (offered.amount, offered.currency) == ("25.00", "EUR")


def test_contracts_flag_cases_outside_them_and_the_installed_base(hub: Hub) -> None:
    cid = customer(hub)
    product = uuid4()
    run(hub, sc.RecordInstalledProduct(customer_id=cid, product_id=product,
                                       product_code="boiler-x", serial_number="SN-1"))
    with pytest.raises(s.CaseStateError, match="installed already"):
        run(hub, sc.RecordInstalledProduct(customer_id=cid, product_id=uuid4(),
                                           product_code="boiler-x", serial_number="SN-1"))
    outside = open_case(hub, cid, product_id=product)
    contract = uuid4()
    run(hub, sc.AddContract(customer_id=cid, contract_id=contract, starts_on=date(2026, 1, 1),
                            ends_on=date(2026, 12, 31), covered_products=["boiler-x"],
                            sla_policy="gold", visits_included=2))
    inside = open_case(hub, cid, product_id=product)
    opened = {e.case_id: e for e in events(hub, cid) if isinstance(e, s.CaseOpened)}
    assert opened[str(outside)].outside_contract and opened[str(outside)].contract_id is None
    assert opened[str(inside)].contract_id == str(contract)
    assert opened[str(inside)].sla_policy == "gold"
    run(hub, sc.EndContract(customer_id=cid, contract_id=contract, ends_on=date(2026, 6, 30)))
    assert open_case(hub, cid, product_id=product) and events(hub, cid)[-1].outside_contract
    with pytest.raises(s.CaseStateError, match="ends on or after"):
        run(hub, sc.AddContract(customer_id=cid, contract_id=uuid4(), starts_on=date(2026, 2, 1),
                                ends_on=date(2026, 1, 1)))
    run(hub, sc.RemoveInstalledProduct(customer_id=cid, product_id=product))
    with pytest.raises(s.CaseStateError, match="removed already"):
        run(hub, sc.RemoveInstalledProduct(customer_id=cid, product_id=product,
                                           source_key="again"))


def test_more_refusals_each_with_its_reason(hub: Hub) -> None:
    cid = customer(hub)
    complaint = open_case(hub, cid, case_kind="complaint", severity="minor")
    run(hub, sc.ResolveCase(customer_id=cid, case_id=complaint, resolution_code="x"))
    with pytest.raises(s.CaseStateError, match="cannot change the priority"):
        run(hub, sc.ReprioritiseCase(customer_id=cid, case_id=complaint, priority="low"))
    run(hub, sc.CloseCase(customer_id=cid, case_id=complaint))
    with pytest.raises(s.CaseStateError, match="is closed"):
        run(hub, sc.OfferCompensation(customer_id=cid, case_id=complaint, amount="5"))
    with pytest.raises(s.CaseStateError, match="cannot link"):
        run(hub, sc.LinkTouchpoint(customer_id=cid, case_id=complaint,
                                   event_id=UUID(email(hub, "<x@example.com>").event_ids[0])))
    with pytest.raises(s.CaseUnknownError, match="no contract"):
        run(hub, sc.EndContract(customer_id=cid, contract_id=uuid4(), ends_on=date(2026, 1, 1)))
    contract = uuid4()
    run(hub, sc.AddContract(customer_id=cid, contract_id=contract, starts_on=date(2026, 1, 1),
                            ends_on=date(2026, 12, 31)))
    with pytest.raises(s.CaseStateError, match="cannot end on"):
        run(hub, sc.EndContract(customer_id=cid, contract_id=contract, ends_on=date(2027, 6, 1)))
    with pytest.raises(s.CaseUnknownError, match="no installed product"):
        open_case(hub, cid, product_id=uuid4())
    with pytest.raises(s.CaseUnknownError, match="no installed product"):
        run(hub, sc.RemoveInstalledProduct(customer_id=cid, product_id=uuid4()))
    note = run(hub, m.AddNote(customer_id=cid, text="hello"))
    with pytest.raises(TouchpointUnknownError, match="not a touchpoint"):
        open_case(hub, cid, origin_event_id=UUID(note.event_ids[0]))
    fresh = open_case(hub, cid)
    unchanged = run(hub, sc.AssignCase(customer_id=cid, case_id=fresh, queue="default"))
    assert unchanged.event_ids == []  # already there: nothing recorded
