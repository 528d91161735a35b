"""Work: staff tasks and appointments, and the routing of work to staff by rule.

Tasks live on the customer's own stream (``Customer.BusinessEvent``), each with
its own ``task_id``, optionally linked to a case, an opportunity or a work
order of the same customer. The state the rules need is ``customer.area("work")``
(ids, statuses, staff ids, ISO times — never the title):

``tasks``   task id → status, assignee, queue, due/end/reminder times, link

Task life: open → completed | cancelled; an open task may be assigned and
rescheduled any number of times.

Routing (``route``) is a pure function of the rules, the roster, the item's
facts, the moment and the current loads: the first rule whose criteria match
and that has someone with the skill (and language) on shift picks one of them,
round-robin or least-loaded. Its outcome is recorded as ``WorkRouted`` naming
the rule (or why nobody was picked), beside the assignment itself
(``TaskAssigned``, or the service area's ``CaseAssigned`` for a case).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from domain import service
from domain.customer import Customer, Provenance
from domain.errors import DomainError

AREA = "work"
TASK_KINDS = ("call", "meeting", "visit", "email", "todo")
LINK_KINDS = ("case", "opportunity", "work-order")
ITEM_KINDS = ("task", "case")
STRATEGIES = ("round-robin", "least-loaded")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FOLLOW_UP_TRIGGERS = ("complaint-resolved", "deal-won")
_FOLLOW_UP_NAMESPACE = uuid5(NAMESPACE_URL, "touchstream:follow-up-task")


class TaskUnknownError(DomainError):
    """Raised when a command names a task (or a linked case, opportunity or work order)
    the customer does not have."""


class TaskStateError(DomainError):
    """Raised when a task change is not allowed in the task's current state, or its times
    do not fit together."""


# -- events --------------------------------------------------------------------
class TaskCreated(Customer.BusinessEvent):
    task_id: str
    task_kind: str
    title: str
    due_at: str  # ISO date-time with offset (the library's JSON transcoder has no datetime)
    ends_at: str | None
    reminder_at: str | None
    assignee: str | None
    queue: str
    link_kind: str | None
    link_id: str | None
    origin_event_id: str | None  # the event a follow-up rule reacted to
    rule: str | None  # the follow-up rule that created it (None: by hand)

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("tasks", {})[self.task_id] = {
            "status": "open", "assignee": self.assignee, "queue": self.queue,
            "due_at": self.due_at, "ends_at": self.ends_at, "reminder_at": self.reminder_at,
            "link_kind": self.link_kind, "link_id": self.link_id}


class TaskAssigned(Customer.BusinessEvent):
    task_id: str
    assignee: str | None
    previous_assignee: str | None
    queue: str

    def apply(self, aggregate: Any) -> None:
        task = _task(aggregate, self.task_id)
        task["assignee"], task["queue"] = self.assignee, self.queue


class TaskRescheduled(Customer.BusinessEvent):
    task_id: str
    due_at: str
    ends_at: str | None
    reminder_at: str | None

    def apply(self, aggregate: Any) -> None:
        _task(aggregate, self.task_id).update(
            due_at=self.due_at, ends_at=self.ends_at, reminder_at=self.reminder_at)


class TaskCompleted(Customer.BusinessEvent):
    task_id: str
    outcome: str | None  # free text: personal

    def apply(self, aggregate: Any) -> None:
        _task(aggregate, self.task_id)["status"] = "completed"


class TaskCancelled(Customer.BusinessEvent):
    task_id: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        _task(aggregate, self.task_id)["status"] = "cancelled"


class WorkRouted(Customer.BusinessEvent):
    """The routing rules' decision about a new item: the rule and the staff member it
    picked, or (``agent`` None) why it stays in its queue."""

    item_kind: str
    item_id: str
    queue: str
    agent: str | None
    rule: str | None
    strategy: str | None
    outcome: str  # "assigned", "no-rule", "nobody-on-shift"

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("routed", {})[f"{self.item_kind}:{self.item_id}"] = \
            self.rule


class WorkMoved(Customer.BusinessEvent):
    """A supervisor's rebalancing move of an open item to another staff member."""

    item_kind: str
    item_id: str
    from_agent: str | None
    to_agent: str
    queue: str
    reason: str | None


EVENTS: tuple[type[Customer.BusinessEvent], ...] = (
    TaskCreated, TaskAssigned, TaskRescheduled, TaskCompleted, TaskCancelled, WorkRouted,
    WorkMoved,
)


def _task(aggregate: Any, task_id: str) -> dict[str, Any]:
    return aggregate.area(AREA)["tasks"][task_id]


# -- task rules ----------------------------------------------------------------
def task_state(customer: Customer, task_id: str) -> dict[str, Any]:
    """The area state of one task, or ``TaskUnknownError``."""
    task = customer.area(AREA).get("tasks", {}).get(task_id)
    if task is None:
        raise TaskUnknownError(f"customer {_cid(customer)} has no task {task_id}")
    return task


def _open_task(customer: Customer, task_id: str, doing: str) -> dict[str, Any]:
    task = task_state(customer, task_id)
    if task["status"] != "open":
        raise TaskStateError(f"task {task_id} is {task['status']}: cannot {doing}")
    return task


def _times(due_at: datetime, ends_at: datetime | None,
           reminder_at: datetime | None) -> tuple[str, str | None, str | None]:
    for name, value in (("due", due_at), ("end", ends_at), ("reminder", reminder_at)):
        if value is not None and value.tzinfo is None:
            raise TaskStateError(f"the {name} time needs a timezone offset")
    if ends_at is not None and ends_at < due_at:
        raise TaskStateError("an appointment ends at or after it starts")
    if reminder_at is not None and reminder_at > due_at:
        raise TaskStateError("a reminder comes at or before the due time")
    return (due_at.isoformat(), ends_at.isoformat() if ends_at else None,
            reminder_at.isoformat() if reminder_at else None)


def check_link(customer: Customer, link_kind: str | None, link_id: str | None) -> None:
    """A task's link names a case, opportunity or work order of the same customer."""
    if (link_kind is None) != (link_id is None):
        raise TaskStateError("a link needs both its kind and its id")
    if link_kind is None:
        return
    if link_kind not in LINK_KINDS:
        raise TaskStateError(f"a link is one of {', '.join(LINK_KINDS)}, not {link_kind!r}")
    found: Mapping[str, Any] = {
        "case": customer.area(service.AREA).get("cases", {}),
        "opportunity": customer.area("sales").get("opportunities", {}),
        "work-order": customer.area("dispatch"),
    }[link_kind]
    if link_id not in found:
        raise TaskUnknownError(f"customer {_cid(customer)} has no {link_kind} {link_id}")


def create_task(customer: Customer, prov: Provenance, *, task_id: str, task_kind: str,
                title: str, due_at: datetime, ends_at: datetime | None,
                reminder_at: datetime | None, assignee: str | None, queue: str,
                link_kind: str | None, link_id: str | None,
                origin_event_id: str | None = None, rule: str | None = None) -> None:
    """Create a task or appointment (``ends_at`` set: an appointment with a duration)."""
    if task_kind not in TASK_KINDS:
        raise TaskStateError(f"a task kind is one of {', '.join(TASK_KINDS)}, not {task_kind!r}")
    if task_id in customer.area(AREA).get("tasks", {}):
        raise TaskStateError(f"task {task_id} exists already")
    due, ends, reminder = _times(due_at, ends_at, reminder_at)
    check_link(customer, link_kind, link_id)
    customer.record_business(
        TaskCreated, prov, task_id=task_id, task_kind=task_kind, title=title, due_at=due,
        ends_at=ends, reminder_at=reminder, assignee=assignee, queue=queue,
        link_kind=link_kind, link_id=link_id, origin_event_id=origin_event_id, rule=rule)


def assign_task(customer: Customer, prov: Provenance, task_id: str, assignee: str | None,
                queue: str | None) -> None:
    task = _open_task(customer, task_id, "assign it")
    queue = queue or task["queue"]
    if task["assignee"] == assignee and task["queue"] == queue:
        return
    customer.record_business(TaskAssigned, prov, task_id=task_id, assignee=assignee,
                             previous_assignee=task["assignee"], queue=queue)


def reschedule_task(customer: Customer, prov: Provenance, task_id: str, due_at: datetime,
                    ends_at: datetime | None, reminder_at: datetime | None) -> None:
    task = _open_task(customer, task_id, "reschedule it")
    due, ends, reminder = _times(due_at, ends_at, reminder_at)
    if (due, ends, reminder) == (task["due_at"], task["ends_at"], task["reminder_at"]):
        return
    customer.record_business(TaskRescheduled, prov, task_id=task_id, due_at=due, ends_at=ends,
                             reminder_at=reminder)


def complete_task(customer: Customer, prov: Provenance, task_id: str,
                  outcome: str | None) -> None:
    _open_task(customer, task_id, "complete it")
    customer.record_business(TaskCompleted, prov, task_id=task_id, outcome=outcome)


def cancel_task(customer: Customer, prov: Provenance, task_id: str, reason: str | None) -> None:
    _open_task(customer, task_id, "cancel it")
    customer.record_business(TaskCancelled, prov, task_id=task_id, reason=reason)


# -- follow-up rules -------------------------------------------------------------
@dataclass(frozen=True)
class FollowUpRule:
    """A task created by itself after an event: ``trigger`` is ``complaint-resolved`` or
    ``deal-won``; it is due ``after_days`` later and goes to the case's agent or the
    opportunity's owner (else to ``queue``)."""

    name: str
    trigger: str
    after_days: int = 7
    task_kind: str = "call"
    title: str = "Follow-up call"
    queue: str = "follow-up"


def follow_up_task_id(origin_event_id: str, rule: str) -> str:
    """The follow-up task's id: the same for the same trigger and rule, on every retry."""
    return str(uuid5(_FOLLOW_UP_NAMESPACE, f"{origin_event_id}|{rule}"))


def create_follow_up(customer: Customer, prov: Provenance, rule: FollowUpRule, *,
                     trigger: str, origin_event_id: str, link_id: str,
                     occurred_at: datetime) -> None:
    """The follow-up task of ``rule`` for the event ``origin_event_id`` (a complaint
    resolved, a deal won), once: an origin already followed up records nothing."""
    if trigger != rule.trigger:
        raise TaskStateError(f"rule {rule.name} follows {rule.trigger}, not {trigger}")
    task_id = follow_up_task_id(origin_event_id, rule.name)
    if task_id in customer.area(AREA).get("tasks", {}):
        return
    if trigger == "complaint-resolved":
        link_kind = "case"
        owner = service.case_state(customer, link_id).get("agent")
    else:
        link_kind = "opportunity"
        opp = customer.area("sales").get("opportunities", {}).get(link_id)
        if opp is None:
            raise TaskUnknownError(f"customer {_cid(customer)} has no opportunity {link_id}")
        owner = opp.get("owner")
    create_task(customer, prov, task_id=task_id,
                task_kind=rule.task_kind, title=rule.title,
                due_at=occurred_at + timedelta(days=rule.after_days), ends_at=None,
                reminder_at=None, assignee=owner, queue=rule.queue, link_kind=link_kind,
                link_id=link_id, origin_event_id=origin_event_id, rule=rule.name)


# -- routing rules ---------------------------------------------------------------
@dataclass(frozen=True)
class Shift:
    days: tuple[str, ...]
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        # A shift ending at or before it starts runs past midnight.
        day = DAYS[local.weekday()]
        at = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return day in self.days and self.start <= at < self.end
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and at >= self.start) or \
            (yesterday in self.days and at < self.end)


@dataclass(frozen=True)
class Staff:
    id: str
    team: str = "default"
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    shifts: tuple[Shift, ...] = ()


@dataclass(frozen=True)
class Roster:
    zone: str = "UTC"
    staff: tuple[Staff, ...] = ()

    def on_shift(self, at: datetime) -> list[Staff]:
        local = at.astimezone(ZoneInfo(self.zone))
        return [s for s in self.staff if any(sh.covers(local) for sh in s.shifts)]

    def team(self, team: str) -> list[str]:
        return [s.id for s in self.staff if s.team == team]


@dataclass(frozen=True)
class AssignmentRule:
    """Criteria (empty: any) and whom to pick: staff with ``skill`` (and, when the rule
    names languages, speaking the customer's), on shift, by ``strategy``."""

    name: str
    applies_to: tuple[str, ...] = ITEM_KINDS
    channels: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()  # "DE" (a country) or "DE-10" (postcodes 10…)
    languages: tuple[str, ...] = ()
    skill: str | None = None
    strategy: str = "least-loaded"


@dataclass(frozen=True)
class WorkFacts:
    """What routing knows of an item: its own attributes and its customer's."""

    item_kind: str
    queue: str
    channel: str | None = None
    category: str | None = None
    partner_id: str | None = None
    country: str | None = None
    postcode: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Routing:
    agent: str | None
    rule: str | None
    strategy: str | None
    outcome: str


def in_territory(territories: Sequence[str], country: str | None,
                 postcode: str | None) -> bool:
    """``DE`` matches the country; ``DE-10`` a postcode of DE starting with ``10``."""
    c = (country or "").upper()
    p = (postcode or "").replace(" ", "").upper()
    for t in territories:
        want_c, _, prefix = t.upper().partition("-")
        if want_c == c and p.startswith(prefix):
            return True
    return False


def matches(rule: AssignmentRule, facts: WorkFacts) -> bool:
    def one(allowed: Sequence[str], value: str | None) -> bool:
        return not allowed or value in allowed

    return (facts.item_kind in rule.applies_to and one(rule.channels, facts.channel)
            and one(rule.queues, facts.queue) and one(rule.categories, facts.category)
            and one(rule.partners, facts.partner_id)
            and one(rule.languages, (facts.language or "").lower() or None)
            and (not rule.territories
                 or in_territory(rule.territories, facts.country, facts.postcode)))


def candidates(rule: AssignmentRule, roster: Roster, facts: WorkFacts,
               at: datetime) -> list[str]:
    """Staff on shift with the rule's skill (and the customer's language when the rule
    routes by language), by id."""
    language = (facts.language or "").lower()
    return sorted(s.id for s in roster.on_shift(at)
                  if (rule.skill is None or rule.skill in s.skills)
                  and (not rule.languages or language in s.languages))


def route(rules: Sequence[AssignmentRule], roster: Roster, facts: WorkFacts, at: datetime,
          loads: Mapping[str, int], turns: Mapping[str, int]) -> Routing:
    """Who takes the item: the first matching rule with someone on shift decides.

    ``loads``: open items per staff id; ``turns``: assignments made so far per rule
    (round-robin takes the next in id order; least-loaded the lightest, ties by id)."""
    matched: str | None = None
    for rule in rules:
        if not matches(rule, facts):
            continue
        matched = matched or rule.name
        people = candidates(rule, roster, facts, at)
        if not people:
            continue
        if rule.strategy == "round-robin":
            agent = people[turns.get(rule.name, 0) % len(people)]
        else:
            agent = min(people, key=lambda p: (loads.get(p, 0), p))
        return Routing(agent, rule.name, rule.strategy, "assigned")
    if matched is None:
        return Routing(None, None, None, "no-rule")
    return Routing(None, matched, None, "nobody-on-shift")


def customer_facts(customer: Customer, item_kind: str, queue: str, channel: str | None,
                   category: str | None) -> WorkFacts:
    """The item's facts with its customer's partner, country, postcode and language (from
    the profile; used for the decision, never stored in the event)."""
    profile = customer.profile
    return WorkFacts(item_kind=item_kind, queue=queue, channel=channel, category=category,
                     partner_id=customer.partner_id, country=profile.get("country"),
                     postcode=profile.get("postcode"), language=profile.get("language"))


def route_item(customer: Customer, provs: Iterator[Provenance], *, item_kind: str,
               item_id: str, channel: str | None, category: str | None,
               rules: Sequence[AssignmentRule], roster: Roster, loads: Mapping[str, int],
               turns: Mapping[str, int]) -> None:
    """Route a new, unassigned task or case once: ``WorkRouted`` naming the rule, and the
    assignment. An item already routed, assigned by hand or no longer open is left."""
    if f"{item_kind}:{item_id}" in customer.area(AREA).get("routed", {}):
        return
    if item_kind == "task":
        item = task_state(customer, item_id)
        if item["status"] != "open" or item["assignee"] is not None:
            return
    elif item_kind == "case":
        item = service.case_state(customer, item_id)
        if item["status"] not in service.OPEN_STATES or item["agent"] is not None:
            return
    else:
        raise TaskStateError(f"an item is a task or a case, not {item_kind!r}")
    queue = item["queue"]
    prov = next(provs)
    decided = route(rules, roster, customer_facts(customer, item_kind, queue, channel, category),
                    prov.occurred_at, loads, turns)
    customer.record_business(WorkRouted, prov, item_kind=item_kind, item_id=item_id,
                             queue=queue, agent=decided.agent, rule=decided.rule,
                             strategy=decided.strategy, outcome=decided.outcome)
    if decided.agent is not None:
        _assign(customer, next(provs), item_kind, item_id, decided.agent, queue)


def move_item(customer: Customer, provs: Iterator[Provenance], *, item_kind: str,
              item_id: str, to_agent: str, reason: str | None) -> None:
    """A supervisor's move of an open task or case to ``to_agent`` (nothing if it is theirs)."""
    if item_kind == "task":
        item = _open_task(customer, item_id, "move it")
        current = item["assignee"]
    elif item_kind == "case":
        item = service.case_state(customer, item_id)
        if item["status"] not in service.OPEN_STATES:
            raise TaskStateError(f"case {item_id} is {item['status']}: cannot move it")
        current = item["agent"]
    else:
        raise TaskStateError(f"an item is a task or a case, not {item_kind!r}")
    if current == to_agent:
        return
    queue = item["queue"]
    customer.record_business(WorkMoved, next(provs), item_kind=item_kind, item_id=item_id,
                             from_agent=current, to_agent=to_agent, queue=queue, reason=reason)
    _assign(customer, next(provs), item_kind, item_id, to_agent, queue)


def _assign(customer: Customer, prov: Provenance, item_kind: str, item_id: str, agent: str,
            queue: str) -> None:
    if item_kind == "task":
        assign_task(customer, prov, item_id, agent, queue)
    else:
        service.assign_case(customer, prov, item_id, queue, agent)


@dataclass(frozen=True)
class TerritoryDef:
    """A sales territory (``domain.territories``): ``prefixes`` like ``DE`` (the country)
    or ``DE-10`` (postcodes of DE starting with 10); the first that matches wins."""

    name: str
    prefixes: tuple[str, ...]
    owner: str


@dataclass(frozen=True)
class WorkPolicy:
    """The work area's configuration: follow-up rules, routing rules and the roster."""

    follow_ups: tuple[FollowUpRule, ...] = ()
    rules: tuple[AssignmentRule, ...] = ()
    roster: Roster = field(default_factory=Roster)
    commissions: CommissionRates = field(default_factory=lambda: CommissionRates())
    territories: tuple[TerritoryDef, ...] = ()

    def follow_up(self, trigger: str) -> list[FollowUpRule]:
        return [r for r in self.follow_ups if r.trigger == trigger]


def _cid(customer: Customer) -> str:
    return str(customer.id).removeprefix("customer-")


# -- commissions -------------------------------------------------------------------
@dataclass(frozen=True)
class CommissionRates:
    """Commission per owner: ``rates[owner]`` else ``default`` (fractions, "0.05" = 5 %)."""

    default: Decimal = Decimal(0)
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def rate(self, owner: str) -> Decimal:
        return self.rates.get(owner, self.default)


def commission(won_amounts: Sequence[str], rate: Decimal) -> tuple[Decimal, Decimal]:
    """The won total and its commission, rounded half-up to cents (never via float)."""
    total = sum((Decimal(a) for a in won_amounts), Decimal(0))
    return total, (total * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
