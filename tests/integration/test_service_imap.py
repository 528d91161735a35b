"""A case opened from a real IMAP message (Dovecot) and joined by the customer's reply,
once, through the email channel's bulk path; the service read model shows both."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from commands import service as sc
from commands.hub import Hub
from domain import service as s
from domain.customer import Customer
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections import registry
from projections.engine import Worker
from projections.service.view import ServiceView
from tests.support import dovecot as dv
from tests.support.mail import message
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester


def test_an_imap_message_opens_a_case_and_the_reply_joins_it_once(
        dovecot: dv.Dovecot, mailbox: dict[str, str], hub: Hub) -> None:
    user = mailbox["TOUCHSTREAM_IMAP_USER"]
    deps = Dependencies(settings_mod.load(mailbox), hub=hub)
    ingester = build_ingester(deps)
    dovecot.append(user, message(1, subject="Boiler broken"))
    ingester.run_once()
    cid = hub.find_by_contact("email", "ada@example.com")
    assert cid is not None
    first = next(e for e in hub.stream(cid) if isinstance(e, Customer.EmailRecorded))
    case = uuid4()
    hub.execute(sc.OpenCase(customer_id=cid, case_id=case, category="repair", priority="high",
                            subject="Boiler broken", origin_event_id=first.event_id))
    hub.execute(sc.WaitOnCustomer(customer_id=cid, case_id=case, reason="Which model?"))

    reply = message(2, subject="Re: Boiler broken",
                    headers="In-Reply-To: <m1@example.com>\nReferences: <m1@example.com>")
    dovecot.append(user, reply, reply)  # delivered twice
    ingester.run_once()
    ingester.run_once()
    dovecot.append(user, message(3, subject="Another matter"))  # a new thread: not joined
    ingester.run_once()

    events = list(hub.stream(cid))
    emails = [e for e in events if isinstance(e, Customer.EmailRecorded)]
    assert len(emails) == 3
    links = [e for e in events if isinstance(e, s.CaseTouchpointLinked)]
    assert [(l.touchpoint_event_id, l.automatic) for l in links] == [(str(emails[1].event_id),
                                                                      True)]
    resumed = [e for e in events if isinstance(e, s.CaseResumed)]
    assert [(e.automatic, e.causation_id) for e in resumed] == [(True, str(emails[1].event_id))]

    store = deps.read_store
    db = store.connect()
    try:
        Worker(db, deps.event_source(), [(registry.get("service"), None)]).catch_up()
    finally:
        db.close()
    view = ServiceView(store, config_from_mapping(DEFAULT_CONFIG))
    detail = view.case(str(case), datetime.now(UTC))
    assert detail is not None and detail["status"] == "open" and detail["touchpoints"] == 2
    assert [st["kind"] for st in detail["steps"]] == [
        "CaseOpened", "CaseWaitingOnCustomer", "CaseTouchpointLinked", "CaseResumed"]
    suggested = view.customer_cases(str(cid))["suggestions"]
    assert [x["touchpoint_event_id"] for x in suggested] == [str(emails[2].event_id)]
    assert UUID(detail["customer_id"]) == cid
