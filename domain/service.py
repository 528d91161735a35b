"""Service: cases, complaints, CSAT answers, contracts and the installed base.

Every event lives on the customer's own stream (``Customer.BusinessEvent``), so
it is encrypted, erased, exported and sealed with the customer's other events.
The rules are the functions below (pure: the time arrives in the provenance);
the state they need is ``customer.area("service")`` — ids, statuses, categories,
dates as ISO text, never personal data:

``cases``      case id → status, kind, category, priority, queue, agent, thread,
               linked touchpoint ids, counters that derive first-contact resolution
``threads``    email thread id → the open case it belongs to
``contracts``  contract id → period, covered products, SLA policy, visits
``products``   installed product id → product code, serial, contract

Case life: open → (waiting ⇄ open) → resolved → closed, with resolved →
reopened → open. First-contact resolution is derived at resolution: never
reopened, never waited on the customer, at most one inbound touchpoint.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.customer import Customer, Provenance
from domain.errors import DomainError

AREA = "service"
CASE_KINDS = ("request", "complaint")
PRIORITIES = ("urgent", "high", "normal", "low")
CASE_CHANNELS = ("phone", "email", "fax", "visit", "web", "system")
SEVERITIES = ("minor", "major", "critical")
OPEN_STATES = ("open", "waiting")
_LINK_NAMESPACE = uuid5(NAMESPACE_URL, "touchstream:case-link")


class CaseUnknownError(DomainError):
    """Raised when a command names a case, contract or product the customer does not have."""


class CaseStateError(DomainError):
    """Raised when a case transition is not allowed from the case's current status."""


class CaseOpened(Customer.BusinessEvent):
    case_id: str
    case_kind: str
    category: str
    priority: str
    case_channel: str
    queue: str
    subject: str
    origin_event_id: str | None
    thread_id: str | None
    account_id: str | None
    product_id: str | None
    contract_id: str | None
    outside_contract: bool
    sla_policy: str | None
    severity: str | None
    cause_category: str | None

    def apply(self, aggregate: Any) -> None:
        area = aggregate.area(AREA)
        area.setdefault("cases", {})[self.case_id] = {
            "status": "open", "kind": self.case_kind, "category": self.category,
            "priority": self.priority, "queue": self.queue, "agent": None,
            "thread_id": self.thread_id, "touchpoints": [], "inbound": 0,
            "waited": False, "reopened": 0, "csat": False, "follow_up": False,
        }
        if self.origin_event_id:
            _link(area["cases"][self.case_id], self.origin_event_id,
                  self.direction == "inbound")
        if self.thread_id:
            area.setdefault("threads", {})[self.thread_id] = self.case_id


class CaseAssigned(Customer.BusinessEvent):
    case_id: str
    queue: str
    agent: str | None

    def apply(self, aggregate: Any) -> None:
        case = _case(aggregate, self.case_id)
        case["queue"], case["agent"] = self.queue, self.agent


class CaseReprioritised(Customer.BusinessEvent):
    case_id: str
    priority: str

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["priority"] = self.priority


class CaseTouchpointLinked(Customer.BusinessEvent):
    case_id: str
    touchpoint_event_id: str
    touchpoint_channel: str
    touchpoint_direction: str
    automatic: bool

    def apply(self, aggregate: Any) -> None:
        _link(_case(aggregate, self.case_id), self.touchpoint_event_id,
              self.touchpoint_direction == "inbound")


class CaseNoteAdded(Customer.BusinessEvent):
    case_id: str
    text: str
    visibility: str


class CaseWaitingOnCustomer(Customer.BusinessEvent):
    case_id: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        case = _case(aggregate, self.case_id)
        case["status"], case["waited"] = "waiting", True


class CaseResumed(Customer.BusinessEvent):
    case_id: str
    automatic: bool

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["status"] = "open"


class CaseResolved(Customer.BusinessEvent):
    case_id: str
    resolution_code: str
    first_contact: bool

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["status"] = "resolved"


class CaseReopened(Customer.BusinessEvent):
    case_id: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        case = _case(aggregate, self.case_id)
        case["status"], case["reopened"] = "open", case["reopened"] + 1


class CaseClosed(Customer.BusinessEvent):
    case_id: str

    def apply(self, aggregate: Any) -> None:
        area = aggregate.area(AREA)
        case = _case(aggregate, self.case_id)
        case["status"] = "closed"
        if case.get("thread_id"):
            area.get("threads", {}).pop(case["thread_id"], None)


class ComplaintCompensationOffered(Customer.BusinessEvent):
    case_id: str
    amount: str
    currency: str

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["compensation"] = "offered"


class ComplaintCompensationAnswered(Customer.BusinessEvent):
    case_id: str
    accepted: bool

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["compensation"] = "accepted" if self.accepted \
            else "declined"


class ComplaintFollowUpScheduled(Customer.BusinessEvent):
    case_id: str
    follow_up_on: str  # ISO date
    follow_up_channel: str

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["follow_up"] = True


class CaseSatisfactionRecorded(Customer.BusinessEvent):
    case_id: str
    score: int
    comment: str | None

    def apply(self, aggregate: Any) -> None:
        _case(aggregate, self.case_id)["csat"] = True


class ServiceContractAdded(Customer.BusinessEvent):
    contract_id: str
    starts_on: str
    ends_on: str
    covered_products: list[str]
    sla_policy: str
    visits_included: int
    account_id: str | None

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("contracts", {})[self.contract_id] = {
            "starts_on": self.starts_on, "ends_on": self.ends_on,
            "products": list(self.covered_products), "sla_policy": self.sla_policy,
            "visits": self.visits_included,
        }


class ServiceContractEnded(Customer.BusinessEvent):
    contract_id: str
    ends_on: str

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA)["contracts"][self.contract_id]["ends_on"] = self.ends_on


class InstalledProductRecorded(Customer.BusinessEvent):
    product_id: str
    product_code: str
    serial_number: str
    installed_on: str | None

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("products", {})[self.product_id] = {
            "product_code": self.product_code, "serial_number": self.serial_number,
            "removed": False}


class InstalledProductRemoved(Customer.BusinessEvent):
    product_id: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA)["products"][self.product_id]["removed"] = True


EVENTS: tuple[type[Customer.BusinessEvent], ...] = (
    CaseOpened, CaseAssigned, CaseReprioritised, CaseTouchpointLinked, CaseNoteAdded,
    CaseWaitingOnCustomer, CaseResumed, CaseResolved, CaseReopened, CaseClosed,
    ComplaintCompensationOffered, ComplaintCompensationAnswered, ComplaintFollowUpScheduled,
    CaseSatisfactionRecorded, ServiceContractAdded, ServiceContractEnded,
    InstalledProductRecorded, InstalledProductRemoved,
)


def _case(aggregate: Any, case_id: str) -> dict[str, Any]:
    return aggregate.area(AREA)["cases"][case_id]


def _link(case: dict[str, Any], event_id: str, inbound: bool) -> None:
    if event_id not in case["touchpoints"]:
        case["touchpoints"].append(event_id)
        case["inbound"] += 1 if inbound else 0


# -- rules --------------------------------------------------------------------
def case_state(customer: Customer, case_id: str) -> dict[str, Any]:
    """The area state of one case, or ``CaseUnknownError``."""
    case = customer.area(AREA).get("cases", {}).get(case_id)
    if case is None:
        raise CaseUnknownError(f"customer {_cid(customer)} has no case {case_id}")
    return case


def _in(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise CaseStateError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def _status(customer: Customer, case_id: str, allowed: tuple[str, ...], doing: str) -> dict[
        str, Any]:
    case = case_state(customer, case_id)
    if case["status"] not in allowed:
        raise CaseStateError(
            f"case {case_id} is {case['status']}: cannot {doing} (only when "
            f"{' or '.join(allowed)})")
    return case


def covering_contract(customer: Customer, on: date, product_id: str | None) -> str | None:
    """The valid contract covering ``on`` (and the product's code, when one is named)."""
    area = customer.area(AREA)
    code = area.get("products", {}).get(product_id or "", {}).get("product_code")
    for contract_id, c in sorted(area.get("contracts", {}).items()):
        if c["starts_on"] <= on.isoformat() <= c["ends_on"] and (
                code is None or not c["products"] or code in c["products"]):
            return contract_id
    return None


def open_case(customer: Customer, prov: Provenance, *, case_id: str, case_kind: str,
              category: str, priority: str, case_channel: str, queue: str, subject: str,
              origin: Customer.Event | None, account_id: str | None, product_id: str | None,
              severity: str | None, cause_category: str | None) -> None:
    """Open a case (from the touchpoint ``origin``, or by an agent when None)."""
    _in(case_kind, CASE_KINDS, "case kind")
    _in(priority, PRIORITIES, "priority")
    _in(case_channel, CASE_CHANNELS, "channel")
    _in(severity, SEVERITIES, "severity")
    area = customer.area(AREA)
    if case_id in area.get("cases", {}):
        raise CaseStateError(f"case {case_id} exists already")
    if case_kind != "complaint" and (severity or cause_category):
        raise CaseStateError("severity and cause category belong to complaints")
    if product_id is not None and product_id not in area.get("products", {}):
        raise CaseUnknownError(f"customer {_cid(customer)} has no installed product {product_id}")
    thread_id = getattr(origin, "thread_id", None) if origin is not None else None
    if thread_id and thread_id in area.get("threads", {}):
        raise CaseStateError(f"the email thread already belongs to case {area['threads'][thread_id]}")
    if origin is not None:
        linked = [cid for cid, c in area.get("cases", {}).items()
                  if str(origin.event_id) in c["touchpoints"]]
        if linked:
            raise CaseStateError(f"touchpoint {origin.event_id} already belongs to case {linked[0]}")
        case_channel = origin.channel
    contract_id = covering_contract(customer, prov.occurred_at.date(), product_id)
    policy = area.get("contracts", {}).get(contract_id or "", {}).get("sla_policy")
    customer.record_business(
        CaseOpened, replace(prov, direction=origin.direction if origin is not None else "internal"),
        case_id=case_id, case_kind=case_kind, category=category, priority=priority,
        case_channel=case_channel, queue=queue, subject=subject,
        origin_event_id=str(origin.event_id) if origin is not None else None,
        thread_id=thread_id, account_id=account_id, product_id=product_id,
        contract_id=contract_id, outside_contract=contract_id is None, sla_policy=policy,
        severity=severity, cause_category=cause_category)


def assign_case(customer: Customer, prov: Provenance, case_id: str, queue: str,
                agent: str | None) -> None:
    case = _status(customer, case_id, OPEN_STATES, "assign")
    if case["queue"] == queue and case["agent"] == agent:
        return
    customer.record_business(CaseAssigned, prov, case_id=case_id, queue=queue, agent=agent)


def reprioritise_case(customer: Customer, prov: Provenance, case_id: str, priority: str) -> None:
    _in(priority, PRIORITIES, "priority")
    case = _status(customer, case_id, OPEN_STATES, "change the priority")
    if case["priority"] != priority:
        customer.record_business(CaseReprioritised, prov, case_id=case_id, priority=priority)


def link_touchpoint(customer: Customer, prov: Provenance, case_id: str,
                    touchpoint: Customer.Event, automatic: bool = False) -> None:
    """Link a touchpoint to a case (once; never to two cases)."""
    case = _status(customer, case_id, (*OPEN_STATES, "resolved"), "link a touchpoint")
    eid = str(touchpoint.event_id)
    if eid in case["touchpoints"]:
        return
    for other_id, other in customer.area(AREA).get("cases", {}).items():
        if eid in other["touchpoints"]:
            raise CaseStateError(f"touchpoint {eid} already belongs to case {other_id}")
    customer.record_business(CaseTouchpointLinked, prov, case_id=case_id,
                             touchpoint_event_id=eid, touchpoint_channel=touchpoint.channel,
                             touchpoint_direction=touchpoint.direction, automatic=automatic)


def add_case_note(customer: Customer, prov: Provenance, case_id: str, text: str,
                  visibility: str) -> None:
    _in(visibility, ("internal", "shared"), "visibility")
    case_state(customer, case_id)
    customer.record_business(CaseNoteAdded, replace(
        prov, direction="outbound" if visibility == "shared" else "internal"),
        case_id=case_id, text=text, visibility=visibility)


def wait_on_customer(customer: Customer, prov: Provenance, case_id: str,
                     reason: str | None) -> None:
    _status(customer, case_id, ("open",), "wait on the customer")
    customer.record_business(CaseWaitingOnCustomer, prov, case_id=case_id, reason=reason)


def resume_case(customer: Customer, prov: Provenance, case_id: str) -> None:
    _status(customer, case_id, ("waiting",), "resume")
    customer.record_business(CaseResumed, prov, case_id=case_id, automatic=False)


def first_contact_resolution(case: dict[str, Any]) -> bool:
    """Resolved on first contact: never reopened, never waited, at most one inbound contact."""
    return case["reopened"] == 0 and not case["waited"] and case["inbound"] <= 1


def resolve_case(customer: Customer, prov: Provenance, case_id: str,
                 resolution_code: str) -> None:
    case = _status(customer, case_id, OPEN_STATES, "resolve")
    customer.record_business(CaseResolved, prov, case_id=case_id,
                             resolution_code=resolution_code,
                             first_contact=first_contact_resolution(case))


def reopen_case(customer: Customer, prov: Provenance, case_id: str, reason: str | None) -> None:
    _status(customer, case_id, ("resolved",), "reopen")
    customer.record_business(CaseReopened, prov, case_id=case_id, reason=reason)


def close_case(customer: Customer, prov: Provenance, case_id: str) -> None:
    _status(customer, case_id, ("resolved",), "close")
    customer.record_business(CaseClosed, prov, case_id=case_id)


def _complaint(customer: Customer, case_id: str) -> dict[str, Any]:
    case = case_state(customer, case_id)
    if case["kind"] != "complaint":
        raise CaseStateError(f"case {case_id} is not a complaint")
    return case


def offer_compensation(customer: Customer, prov: Provenance, case_id: str, amount: str,
                       currency: str) -> None:
    case = _complaint(customer, case_id)
    if case.get("compensation") in ("offered", "accepted"):
        raise CaseStateError(f"complaint {case_id} has compensation {case['compensation']}")
    if case["status"] == "closed":
        raise CaseStateError(f"complaint {case_id} is closed")
    customer.record_business(ComplaintCompensationOffered, prov, case_id=case_id,
                             amount=amount, currency=currency)


def answer_compensation(customer: Customer, prov: Provenance, case_id: str,
                        accepted: bool) -> None:
    case = _complaint(customer, case_id)
    if case.get("compensation") != "offered":
        raise CaseStateError(f"complaint {case_id} has no compensation offer to answer")
    customer.record_business(ComplaintCompensationAnswered, prov, case_id=case_id,
                             accepted=accepted)


def schedule_follow_up(customer: Customer, prov: Provenance, case_id: str, on: date,
                       channel: str) -> None:
    case = _complaint(customer, case_id)
    _in(channel, ("phone", "email"), "follow-up channel")
    if case["status"] not in ("resolved", "closed"):
        raise CaseStateError(f"complaint {case_id} is {case['status']}: a follow-up is "
                             "scheduled after resolution")
    if on < prov.occurred_at.date():
        raise CaseStateError(f"follow-up date {on} is in the past")
    customer.record_business(ComplaintFollowUpScheduled, prov, case_id=case_id,
                             follow_up_on=on.isoformat(), follow_up_channel=channel)


def record_satisfaction(customer: Customer, prov: Provenance, case_id: str, score: int,
                        comment: str | None) -> None:
    case = _status(customer, case_id, ("resolved", "closed"), "record satisfaction")
    if not 1 <= score <= 5:
        raise CaseStateError(f"a satisfaction score is 1 to 5, not {score}")
    if case["csat"]:
        raise CaseStateError(f"case {case_id} has a satisfaction answer already")
    customer.record_business(CaseSatisfactionRecorded, prov, case_id=case_id, score=score,
                             comment=comment)


def add_contract(customer: Customer, prov: Provenance, *, contract_id: str, starts_on: date,
                 ends_on: date, covered_products: list[str], sla_policy: str,
                 visits_included: int, account_id: str | None) -> None:
    if contract_id in customer.area(AREA).get("contracts", {}):
        raise CaseStateError(f"contract {contract_id} exists already")
    if ends_on < starts_on:
        raise CaseStateError("a contract ends on or after the day it starts")
    if visits_included < 0:
        raise CaseStateError("visits included cannot be negative")
    customer.record_business(ServiceContractAdded, prov, contract_id=contract_id,
                             starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat(),
                             covered_products=sorted(set(covered_products)),
                             sla_policy=sla_policy, visits_included=visits_included,
                             account_id=account_id)


def end_contract(customer: Customer, prov: Provenance, contract_id: str, ends_on: date) -> None:
    contract = customer.area(AREA).get("contracts", {}).get(contract_id)
    if contract is None:
        raise CaseUnknownError(f"customer {_cid(customer)} has no contract {contract_id}")
    if not contract["starts_on"] <= ends_on.isoformat() <= contract["ends_on"]:
        raise CaseStateError(f"contract {contract_id} runs {contract['starts_on']} to "
                             f"{contract['ends_on']}: it cannot end on {ends_on}")
    customer.record_business(ServiceContractEnded, prov, contract_id=contract_id,
                             ends_on=ends_on.isoformat())


def record_product(customer: Customer, prov: Provenance, *, product_id: str, product_code: str,
                   serial_number: str, installed_on: date | None) -> None:
    products = customer.area(AREA).get("products", {})
    if product_id in products:
        raise CaseStateError(f"installed product {product_id} exists already")
    if any(p["serial_number"] == serial_number and p["product_code"] == product_code
           and not p["removed"] for p in products.values()):
        raise CaseStateError(f"{product_code} serial {serial_number} is installed already")
    customer.record_business(InstalledProductRecorded, prov, product_id=product_id,
                             product_code=product_code, serial_number=serial_number,
                             installed_on=installed_on.isoformat() if installed_on else None)


def remove_product(customer: Customer, prov: Provenance, product_id: str,
                   reason: str | None) -> None:
    product = customer.area(AREA).get("products", {}).get(product_id)
    if product is None:
        raise CaseUnknownError(f"customer {_cid(customer)} has no installed product {product_id}")
    if product["removed"]:
        raise CaseStateError(f"installed product {product_id} was removed already")
    customer.record_business(InstalledProductRemoved, prov, product_id=product_id, reason=reason)


def join_thread(customer: Customer, touchpoint: Customer.Event) -> None:
    """An email in the thread of an open case joins that case, in the same save as the
    email (so exactly once, and replayed as recorded); a customer's reply resumes a case
    waiting on them. Ids derive from the email's event id: a retry triggers the same."""
    thread_id = getattr(touchpoint, "thread_id", None)
    case_id = customer.area(AREA).get("threads", {}).get(thread_id or "")
    if case_id is None:
        return
    case = case_state(customer, case_id)
    if case["status"] not in (*OPEN_STATES, "resolved") or \
            str(touchpoint.event_id) in case["touchpoints"]:
        return
    prov = Provenance(
        event_id=uuid5(_LINK_NAMESPACE, f"{touchpoint.event_id}|link"),
        occurred_at=touchpoint.occurred_at, channel=touchpoint.channel, direction="internal",
        actor="system", source_key=touchpoint.source_key,
        correlation_id=touchpoint.correlation_id, causation_id=str(touchpoint.event_id))
    link_touchpoint(customer, prov, case_id, touchpoint, automatic=True)
    if case["status"] == "waiting" and touchpoint.direction == "inbound":
        customer.record_business(
            CaseResumed, replace(prov, event_id=uuid5(_LINK_NAMESPACE,
                                                      f"{touchpoint.event_id}|resume")),
            case_id=case_id, automatic=True)


def _cid(customer: Customer) -> str:
    return str(customer.id).removeprefix("customer-")


def parse_case_id(value: str) -> str:
    """A case id is uuid text (as every object id of an area)."""
    return str(UUID(value))
