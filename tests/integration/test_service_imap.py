"""A case opened from a real IMAP message (Dovecot) and joined by the customer's reply,
once, through the email channel's bulk path; the service read model shows both. And the
whole automatic flow: routed by rule, acknowledged (RFC 3834) at a real SMTP server with
the case's signed status link, answered from a template, and replied to by the customer
through that link, all on one thread."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from fastapi.testclient import TestClient

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
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester, build_sender
from touchstream.selfservice_routes import selfservice_routes
from touchstream.work_policies import WorkPolicies


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


def test_an_imap_email_opens_a_case_routed_acknowledged_and_answered_in_one_thread(
        dovecot: dv.Dovecot, mailbox: dict[str, str], tmp_path: Path) -> None:
    from domain import replies as r
    from domain import work as w
    from tests.support.reply_flow import email_case_flow

    flow = email_case_flow(dovecot, mailbox, tmp_path)
    try:
        hub, cid = flow.hub, flow.customer_id
        events = list(hub.stream(cid))
        routed = [e for e in events if isinstance(e, w.WorkRouted)]
        assert [(e.rule, e.agent) for e in routed] == [("repairs", "jo")]
        assert any(isinstance(e, s.CaseAssigned) and e.agent == "jo" for e in events)
        ack, reply = flow.inbox.received
        first, ack_id, _reply = flow.message_ids
        # RFC 3834: marked auto-replied, threaded to the customer's message
        assert ack["Auto-Submitted"] == "auto-replied" and ack["To"] == "ada@example.com"
        assert (ack["In-Reply-To"], ack["References"]) == (first, first)
        assert ack["Subject"] == f"Re: Boiler broken [{str(flow.case_id)[:8].upper()}]"
        # the agent's templated reply continues the chain, with no Auto-Submitted
        assert reply["References"].split() == [first, ack_id]
        assert reply["In-Reply-To"] == ack_id and reply["Auto-Submitted"] is None
        assert "The engineer comes Monday." in reply.get_payload()
        # the Message-ID came from the triggering event: a second pass sends nothing more
        WorkPolicies(flow.deps).run_once()
        build_sender(flow.deps).run_once()
        assert len(flow.inbox.received) == 2
        marks = [type(e).__name__ for e in hub.stream(cid)
                 if isinstance(e, (r.AutoReplyQueued, r.TemplateRendered))]
        assert marks == ["TemplateRendered", "AutoReplyQueued", "TemplateRendered"]
        # both outbound emails joined the case's thread
        linked = [e for e in hub.stream(cid) if isinstance(e, s.CaseTouchpointLinked)]
        assert len(linked) == 2
        # the acknowledgement carries the case's signed status link; the customer opens it
        # and answers there, twice (a double submit): one reply, on the same case's thread
        body = ack.get_payload(decode=True).decode()
        found = re.search(r"http://testserver(/help/cases/\S+)", body)
        assert found is not None, body
        path = found.group(1)
        with TestClient(create_app(flow.deps, routers=[selfservice_routes])) as client:
            page = client.get(path)
            assert page.status_code == 200 and "Boiler broken" in page.text
            form = re.search(r'name="_token" value="([^"]+)"', page.text)
            assert form is not None
            answer = {"_token": html.unescape(form.group(1)), "message": "Monday suits me."}
            for _ in range(2):
                posted = client.post(path, data=answer, follow_redirects=False)
                assert posted.status_code == 303, posted.text
            assert "Monday suits me." in client.get(path).text
            assert client.get(path[:-4] + "AAAA").status_code == 403
        replies = [e for e in hub.stream(cid) if isinstance(e, Customer.WebFormSubmitted)
                   and e.fields.get("case_id") == str(flow.case_id)]
        assert len(replies) == 1
        linked = [e.event_id for e in hub.stream(cid) if isinstance(e, s.CaseTouchpointLinked)]
        assert len(linked) == 3
        # an auto-submitted message opening a case is not answered: it is recorded why
        dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(
            9, sender="bob@example.com", subject="Out of office",
            headers="Auto-Submitted: auto-replied"))
        build_ingester(flow.deps).run_once()
        bob = hub.find_by_contact("email", "bob@example.com")
        assert bob is not None
        origin = next(e for e in hub.stream(bob) if isinstance(e, Customer.EmailRecorded))
        hub.execute(sc.OpenCase(customer_id=bob, case_id=uuid4(), category="repair",
                                queue="repair", subject="x", origin_event_id=origin.event_id))
        WorkPolicies(flow.deps).run_once()
        assert [e.reason for e in hub.stream(bob) if isinstance(e, r.AutoReplyWithheld)] == [
            "auto-submitted"]
    finally:
        flow.close()
