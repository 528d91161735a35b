"""The email-to-case flow of issue 19 as one reusable step (a seam for later steps).

``email_case_flow`` runs: an email in a real IMAP mailbox (Dovecot) → the case opened
from it → rule-based assignment → the automatic acknowledgement delivered to a real SMTP
server (aiosmtpd) → an agent's templated reply delivered too; it returns the case and
the thread's Message-IDs in order, so a later step (the customer's self-service status
link and reply) can continue the same thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from aiosmtpd.controller import Controller

from commands import email_messages as em
from commands import replies as rc
from commands import service as sc
from commands.hub import Hub
from domain.customer import Customer
from domain.replies import template_id
from tests.support import dovecot as dv
from tests.support.dovecot import free_port
from tests.support.hubs import make_hub
from tests.support.mail import message
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester, build_sender
from touchstream.work_policies import WorkPolicies

WORK_FILE = """
zone = "UTC"
[[staff]]
id = "jo"
skills = ["repair"]
shifts = [{days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start = "00:00", end = "00:00"}]
[[rules]]
name = "repairs"
queues = ["repair"]
skill = "repair"
"""


class Inbox:
    """An aiosmtpd handler keeping every message it was given."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 2.0.0 queued"


@dataclass
class ThreadSoFar:
    """Where the flow stands: the hub and dependencies (open until ``close``), the case,
    and the thread's Message-IDs (the customer's email, the acknowledgement, the reply)."""

    hub: Hub
    deps: Dependencies
    inbox: Inbox
    customer_id: UUID
    case_id: UUID
    message_ids: list[str]
    env: dict[str, str] = field(default_factory=dict)
    controller: Controller | None = None

    def close(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        self.deps.close()
        self.hub.close()


def email_case_flow(dovecot: dv.Dovecot, mailbox: dict[str, str], tmp: Path) -> ThreadSoFar:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    (tmp / "work.toml").write_text(WORK_FILE)
    env = {**mailbox, "TOUCHSTREAM_SMTP_HOST": "127.0.0.1",
           "TOUCHSTREAM_SMTP_PORT": str(controller.port), "TOUCHSTREAM_SMTP_SECURITY": "plain",
           "TOUCHSTREAM_SMTP_TIMEOUT": "5", "TOUCHSTREAM_WORK_FILE": str(tmp / "work.toml"),
           "TOUCHSTREAM_WORK_AUTO_ACK_FROM": "support@shop.example",
           "TOUCHSTREAM_PUBLIC_BASE_URL": "http://testserver", "TOUCHSTREAM_FORMS_MIN_FILL_S": "0"}
    hub = make_hub(env)
    deps = Dependencies(settings_mod.load(env), hub=hub)
    flow = ThreadSoFar(hub, deps, inbox, UUID(int=0), UUID(int=0), [], env, controller)
    try:
        hub.execute(rc.SaveTemplate(
            name="auto-ack", language="en", subject="Re: {{ subject }} [{{ case.reference }}]",
            body_text="Dear {{ customer.name }},\nwe have your message; case "
                      "{{ case.reference }}.\n{% if status_link is defined %}"
                      "Follow it here: {{ status_link }}\n{% endif %}", source_key="t1"))
        hub.execute(rc.SaveTemplate(
            name="repair-reply", language="en", subject="Re: {{ subject }}",
            body_text="Dear {{ customer.name }},\n{{ answer }}\n", source_key="t2"))
        dovecot.append(mailbox["TOUCHSTREAM_IMAP_USER"], message(1, subject="Boiler broken"))
        build_ingester(deps).run_once()
        cid = hub.find_by_contact("email", "ada@example.com")
        assert cid is not None
        first = next(e for e in hub.stream(cid) if isinstance(e, Customer.EmailRecorded))
        flow.customer_id, flow.case_id = cid, uuid4()
        hub.execute(sc.OpenCase(customer_id=cid, case_id=flow.case_id, category="repair",
                                queue="repair", subject="Boiler broken", channel="email",
                                origin_event_id=first.event_id))
        WorkPolicies(deps).run_once()  # routes the case, queues the acknowledgement
        sender = build_sender(deps)
        sender.run_once()
        ack = inbox.received[-1]
        flow.message_ids = [first.message_id, ack["Message-ID"]]
        hub.execute(em.SendEmail(
            customer_id=cid, from_address="jo@shop.example", to=["ada@example.com"],
            template_id=template_id("repair-reply"), case_id=flow.case_id,
            variables={"subject": "Boiler broken", "answer": "The engineer comes Monday."},
            in_reply_to=ack["Message-ID"], references=flow.message_ids, source_key="reply-1"))
        sender.run_once()
        flow.message_ids.append(inbox.received[-1]["Message-ID"])
    except BaseException:
        flow.close()
        raise
    return flow
