"""Synthetic customer history for the read-side benchmarks, written fast and realistically.

Events are made by the real aggregate (``Customer.record``) and saved in
chunks of 100 (PostgreSQL pipelines hang on very large single saves, see the
field guide); no source keys, as a history import would do.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4, uuid5

from commands.hub import NAMESPACE, Hub
from domain import marketing, sales, service
from domain.customer import Customer, Provenance

T0 = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)
CHUNK = 100  # PostgreSQL: psycopg pipelines were seen to hang on ~0.5 MB saves
_SUBJECTS = ("Invoice question", "Delivery date", "Complaint about service", "Quote request",
             "Thank you", "Change of address", "Contract renewal", "Boiler maintenance")


def _prov(rnd: random.Random, channel: str, at: datetime, key: str) -> Provenance:
    return Provenance(uuid5(NAMESPACE, key), at, channel, rnd.choice(("inbound", "outbound")),
                      "bench", key, key, key)


def add_touchpoints(hub: Hub, customer: Customer, n: int, rnd: random.Random,
                    start: datetime = T0, progress: Callable[[int], None] | None = None) -> None:
    """``n`` mixed touchpoints (calls, emails, visits, web forms) on ``customer``."""
    at = start
    for i in range(n):
        at += timedelta(seconds=rnd.randrange(30, 3600))
        key = f"bench:{customer.id}:{i}"
        pick = rnd.random()
        if pick < 0.45:
            customer.record(Customer.CallLogged, _prov(rnd, "phone", at, key), call_id=key,
                            from_number="+442079460018", to_number=None, queue="support",
                            agent="mia", ivr_choices=["1"], outcome="answered",
                            duration_s=rnd.randrange(20, 900), wait_s=rnd.randrange(0, 120),
                            recording_ref=None, summary=f"{rnd.choice(_SUBJECTS)} (call {i})")
        elif pick < 0.85:
            customer.record(Customer.EmailRecorded, _prov(rnd, "email", at, key),
                            message_id=f"<{key}@example.com>", thread_id=key, in_reply_to=None,
                            references=[], from_address="ada@example.com",
                            to=["support@company.example"], cc=[],
                            subject=rnd.choice(_SUBJECTS),
                            body_text="Hello,\n" + "lorem ipsum dolor " * rnd.randrange(5, 60),
                            body_ref=None, attachments=[])
        elif pick < 0.95:
            customer.record(Customer.VisitRecorded, _prov(rnd, "visit", at, key),
                            visit_kind="field", staff="jo", place="Leeds",
                            purpose=rnd.choice(_SUBJECTS), outcome="done", notes=None,
                            duration_min=45)
        else:
            customer.record(Customer.WebFormSubmitted, _prov(rnd, "web", at, key),
                            form_name="contact", submission_id=key, page_url=None,
                            fields={"message": rnd.choice(_SUBJECTS)})
        if len(customer.pending_events) >= CHUNK:
            hub.save(customer)
            if progress:
                progress(i + 1)
    if customer.pending_events:
        hub.save(customer)


def new_customer(hub: Hub, name: str, rnd: random.Random) -> Customer:
    cid = uuid4()
    customer = Customer.register(cid, _prov(rnd, "system", T0, f"bench:reg:{cid}"), name=name,
                                 company="Bench Ltd")
    customer.add_contact_point(_prov(rnd, "system", T0, f"bench:cp:{cid}"), "email",
                               f"{cid.hex[:12]}@example.com", None)
    hub.save(customer)
    return customer


def add_business(hub: Hub, customer: Customer, n: int, rnd: random.Random,
                 start: datetime = T0) -> int:
    """About ``n`` business events on ``customer`` (issues 13 and 14), made by the areas'
    own rules: consent changes, opportunities moved and won or lost, orders placed, paid and
    shipped, cases opened, resolved and closed, a contract and an installed product.
    Returns how many were recorded."""
    at, made, story = start, 0, 0
    cid = str(customer.id)
    keys = itertools.count()

    def prov(channel: str = "system") -> Provenance:
        nonlocal at
        at += timedelta(minutes=rnd.randrange(5, 6000))
        return _prov(rnd, channel, at, f"bench:biz:{cid}:{next(keys)}")

    while made < n:
        before = len(customer.pending_events)
        kind = story % 4
        key = f"{cid[:8]}-{story}"
        if story == 0:
            product = str(uuid5(NAMESPACE, f"bench:product:{key}"))
            service.record_product(customer, prov(), product_id=product,
                                   product_code="BOILER-S", serial_number=f"SN-{key}",
                                   installed_on=at.date())
            service.add_contract(customer, prov(), contract_id=str(uuid5(
                NAMESPACE, f"bench:contract:{key}")), starts_on=at.date(),
                ends_on=(at + timedelta(days=365)).date(), covered_products=[],
                sla_policy="standard", visits_included=2, account_id=None)
            marketing.give_consent(customer, prov("web"), "email", "newsletter",
                                   "form-submission", key, None)
        elif kind == 1:
            opp = str(uuid5(NAMESPACE, f"bench:opportunity:{key}"))
            sales.open_opportunity(customer, prov(), sales.DEFAULT_PIPELINE,
                                   opportunity_id=opp, title=rnd.choice(_SUBJECTS),
                                   amount=f"{rnd.randrange(100, 20000)}.00", currency="EUR",
                                   expected_close=(at + timedelta(days=60)).date(), owner="sam")
            sales.move_stage(customer, prov(), sales.DEFAULT_PIPELINE, opportunity_id=opp,
                             to_stage="proposal")
            if rnd.random() < 0.5:
                sales.win(customer, prov(), sales.DEFAULT_PIPELINE, opportunity_id=opp,
                          order_reference=f"BENCH-{key}")
            else:
                sales.lose(customer, prov(), sales.DEFAULT_PIPELINE, opportunity_id=opp,
                           reason="price")
        elif kind == 2:
            number, price = f"BENCH-{key}", f"{rnd.randrange(20, 2000)}.00"
            sales.place_order(customer, prov("web"), order_number=number, currency="EUR",
                              lines=[{"product_code": "SPARE", "quantity": "1",
                                      "unit_price": price}], total=price)
            sales.pay_order(customer, prov(), order_number=number)
            sales.ship_order(customer, prov(), order_number=number)
        else:
            case = str(uuid5(NAMESPACE, f"bench:case:{key}"))
            service.open_case(customer, prov("phone"), case_id=case, case_kind="request",
                              category="repair", priority=rnd.choice(service.PRIORITIES),
                              case_channel="phone", queue="default",
                              subject=rnd.choice(_SUBJECTS), origin=None, account_id=None,
                              product_id=None, severity=None, cause_category=None)
            service.resolve_case(customer, prov(), case, "fixed")
            service.close_case(customer, prov(), case)
        made += len(customer.pending_events) - before
        story += 1
        if len(customer.pending_events) >= CHUNK:
            hub.save(customer)
    if customer.pending_events:
        hub.save(customer)
    return made
