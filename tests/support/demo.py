"""Demo-like data through the real write model: customers, every channel, merges, partners."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from commands import messages as m
from commands.hub import Hub

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def seed_demo(hub: Hub) -> dict[str, str]:
    """A small book of customers; returns their ids by nickname."""
    ids: dict[str, str] = {}

    def reg(nick: str, name: str, company: str | None, email: str, phone: str | None) -> None:
        points = [m.ContactPointIn(kind="email", value=email)]
        if phone:
            points.append(m.ContactPointIn(kind="phone", value=phone))
        ids[nick] = hub.execute(m.RegisterCustomer(
            name=name, company=company, contact_points=points, source_key=f"demo:{nick}",
            occurred_at=T0)).customer_id

    reg("ada", "Ada Lovelace", "Analytical Engines", "ada@example.com", "+442079460018")
    reg("ada2", "A. Lovelace", None, "ada.l@example.org", None)
    reg("bob", "Bob Babbage", "Difference Ltd", "bob@example.com", "+442079460019")
    reg("cy", "Cy Young", None, "cy@example.net", "+14155550101")
    at = T0
    for i in range(6):
        at += timedelta(hours=3)
        hub.execute(m.LogCall(call_id=f"demo-call-{i}", from_number="020 7946 0018",
                              summary=f"asked about invoice {i}", occurred_at=at))
    hub.execute(m.RecordEmail(message_id="<demo-1@example.com>", from_address="ada@example.com",
                              subject="Invoice question", body_text="I was charged twice.",
                              occurred_at=at))
    hub.execute(m.RecordEmail(message_id="<demo-2@example.com>", from_address="ada.l@example.org",
                              subject="Old address", occurred_at=at - timedelta(days=2)))
    hub.execute(m.RecordVisit(customer_id=ids["bob"], visit_id="demo-v1", visit_kind="field",
                              staff="jo", purpose="boiler maintenance", occurred_at=at))
    hub.execute(m.RecordWebForm(form_name="contact", submission_id="demo-f1",
                                fields={"message": "call me back"}, email="cy@example.net",
                                occurred_at=at))
    hub.execute(m.RequestCallback(customer_id=ids["cy"], callback_id="demo-cb1",
                                  number="+14155550101", occurred_at=at))
    hub.execute(m.AddNote(customer_id=ids["ada"], text="VIP, handle with care",
                          visibility="internal", source_key="demo:note1"))
    hub.execute(m.AddNote(customer_id=ids["ada"], text="prefers email", visibility="shared",
                          source_key="demo:note2"))
    hub.execute(m.AssignPartner(customer_id=ids["bob"], partner_id="p-north",
                                source_key="demo:partner1"))
    hub.execute(m.ChangeLifecycleStage(customer_id=ids["ada"], to_stage="current",
                                       source_key="demo:stage1"))
    hub.execute(m.MergeCustomers(source_id=ids["ada2"], target_id=ids["ada"]))
    return ids


def random_extra(hub: Hub, ids: dict[str, str], n: int, seed: int = 7) -> None:
    """``n`` random touchpoints and life events on the demo customers."""
    rnd = random.Random(seed)
    live = [ids["ada"], ids["bob"], ids["cy"]]
    for i in range(n):
        cid = rnd.choice(live)
        at = T0 + timedelta(minutes=rnd.randrange(0, 60 * 24 * 90))
        pick = rnd.random()
        if pick < 0.35:
            cmd: m.Command = m.LogCall(customer_id=cid, call_id=f"x-call-{seed}-{i}",
                                       summary=rnd.choice(["refund", "invoice", "delivery"]),
                                       occurred_at=at)
        elif pick < 0.6:
            cmd = m.RecordEmail(customer_id=cid, message_id=f"<x-{seed}-{i}@example.com>",
                                from_address="someone@example.com",
                                subject=rnd.choice(["Order", "Complaint", "Thanks"]),
                                body_text="text " * rnd.randrange(1, 50), occurred_at=at)
        elif pick < 0.7:
            cmd = m.RecordCallStep(customer_id=cid, call_id=f"x-call-{seed}-{i - 1}",
                                   step="ended", occurred_at=at)
        elif pick < 0.8:
            cmd = m.AddNote(customer_id=cid, text=f"note {i}",
                            visibility=rnd.choice(["internal", "shared"]),
                            source_key=f"x-note-{seed}-{i}")
        elif pick < 0.9:
            cmd = m.RecordFax(customer_id=cid, fax_id=f"x-fax-{seed}-{i}", pages=2, occurred_at=at)
        else:
            cmd = m.ChangeProfile(customer_id=cid, changes={"city": rnd.choice(["Leeds", "York"])},
                                  source_key=f"x-prof-{seed}-{i}")
        hub.execute(cmd)
