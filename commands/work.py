"""Work commands: staff tasks and appointments, routing by rule, rebalancing moves.

Each handler reads load → decide → save on the customer's own stream through
``Hub.record_on`` (idempotent by source key on every store); the rules are
``domain.work``'s, configured by the hub's ``policies["work"]`` (the settings'
follow-up rules, routing rules and roster). ``RouteWork`` and
``CreateFollowUp`` are what the work policies send (``touchstream.work_policies``):
their keys derive from the item or the triggering event, so a policy that runs
twice records once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from commands import messages as m
from commands.ports import Recorded
from domain import work
from domain.customer import Customer, Provenance
from domain.errors import DomainError

Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@/-]+$")]
TaskKind = Literal["call", "meeting", "visit", "email", "todo"]
LinkKind = Literal["case", "opportunity", "work-order"]
ItemKind = Literal["task", "case"]
# Keys are staff ids as recorded (an opportunity owner may be any short text) and rule names.
Counts = Annotated[dict[m.Short, Annotated[int, Field(ge=0)]], Field(max_length=1000)]


class WorkRuleUnknownError(DomainError):
    """Raised when a command names a follow-up rule the settings do not define."""


def policy_of(hub: Any) -> work.WorkPolicy:
    """The work policy the hub was configured with (none: no rules, an empty roster)."""
    found = hub.context.policies.get(work.AREA)
    return found if isinstance(found, work.WorkPolicy) else work.WorkPolicy()


class TaskCommand(m.Command):
    customer_id: UUID = Field(description="The customer the task is about.")
    task_id: UUID = Field(description="The task's id (uuid).")


class CreateTask(TaskCommand):
    """Create a task (``due_at``) or an appointment (``due_at`` to ``ends_at``), linked
    optionally to a case, opportunity or work order of the customer. Without an
    ``assignee`` it waits in ``queue`` and the routing rules may assign it."""

    kind: Literal["create-task"] = "create-task"
    task_kind: TaskKind = "call"
    title: m.Short
    due_at: m.AwareDatetime
    ends_at: m.AwareDatetime | None = None
    reminder_at: m.AwareDatetime | None = None
    assignee: Code | None = None
    queue: Code = "default"
    link_kind: LinkKind | None = None
    link_id: UUID | None = None

    def default_source_key(self) -> str:
        return f"create-task:{self.task_id}"


class AssignTask(TaskCommand):
    kind: Literal["assign-task"] = "assign-task"
    assignee: Code | None = Field(description="Staff id; null puts it back in the queue.")
    queue: Code | None = None


class RescheduleTask(TaskCommand):
    kind: Literal["reschedule-task"] = "reschedule-task"
    due_at: m.AwareDatetime
    ends_at: m.AwareDatetime | None = None
    reminder_at: m.AwareDatetime | None = None


class CompleteTask(TaskCommand):
    kind: Literal["complete-task"] = "complete-task"
    outcome: Annotated[str, Field(max_length=5000)] | None = None

    def default_source_key(self) -> str:
        return f"complete-task:{self.task_id}"


class CancelTask(TaskCommand):
    kind: Literal["cancel-task"] = "cancel-task"
    reason: m.Short | None = None

    def default_source_key(self) -> str:
        return f"cancel-task:{self.task_id}"


class RouteWork(m.Command):
    """Route a new unassigned task or case by the routing rules (the work policy sends
    it; ``loads`` and ``turns`` come from the work read model). Once per item."""

    kind: Literal["route-work"] = "route-work"
    customer_id: UUID
    item_kind: ItemKind
    item_id: UUID
    channel: Code | None = None
    category: Code | None = None
    loads: Counts = Field(default_factory=dict, description="Open items per staff id.")
    turns: Counts = Field(default_factory=dict, description="Assignments so far per rule.")

    def default_source_key(self) -> str:
        return f"route-work:{self.item_kind}:{self.item_id}"


class MoveWork(m.Command):
    """A supervisor's rebalancing move: an open task or case to another staff member."""

    kind: Literal["move-work"] = "move-work"
    customer_id: UUID
    item_kind: ItemKind
    item_id: UUID
    to_agent: Code
    reason: m.Short | None = None


class CreateFollowUp(m.Command):
    """The follow-up task of a settings rule for an event (a complaint resolved, a deal
    won); the work policy sends it. Once per event and rule."""

    kind: Literal["create-follow-up"] = "create-follow-up"
    customer_id: UUID
    rule: Code
    trigger: Literal["complaint-resolved", "deal-won"]
    origin_event_id: UUID = Field(description="The event the rule reacts to.")
    link_id: UUID = Field(description="The resolved case or the won opportunity.")
    triggered_at: m.AwareDatetime = Field(description="When that event happened.")

    def default_source_key(self) -> str:
        return f"create-follow-up:{self.origin_event_id}:{self.rule}"


def _on(w: Any, cmd: Any, rule: Callable[..., None], *args: Any, **kw: Any) -> Recorded:
    return w.record_on(cmd, cmd.customer_id, lambda c, p: rule(c, next(iter(p)), *args, **kw))


def _all(w: Any, cmd: Any, rule: Callable[..., None], **kw: Any) -> Recorded:
    """For a rule that records several events: it takes the provenance iterator."""
    def decide(c: Customer, provs: Iterator[Provenance]) -> None:
        rule(c, provs, **kw)
    return w.record_on(cmd, cmd.customer_id, decide)


def create_task(w: Any, c: CreateTask) -> Recorded:
    return _on(w, c, work.create_task, task_id=str(c.task_id), task_kind=c.task_kind,
               title=c.title, due_at=c.due_at, ends_at=c.ends_at, reminder_at=c.reminder_at,
               assignee=c.assignee, queue=c.queue, link_kind=c.link_kind,
               link_id=None if c.link_id is None else str(c.link_id))


def route_work(w: Any, c: RouteWork) -> Recorded:
    policy = policy_of(w)
    return _all(w, c, work.route_item, item_kind=c.item_kind, item_id=str(c.item_id),
                channel=c.channel, category=c.category, rules=policy.rules,
                roster=policy.roster, loads=dict(c.loads), turns=dict(c.turns))


def create_follow_up(w: Any, c: CreateFollowUp) -> Recorded:
    found = [r for r in policy_of(w).follow_ups if r.name == c.rule]
    if not found:
        raise WorkRuleUnknownError(f"no follow-up rule {c.rule!r} in the work settings")
    return _on(w, c, work.create_follow_up, found[0], trigger=c.trigger,
               origin_event_id=str(c.origin_event_id), link_id=str(c.link_id),
               occurred_at=c.triggered_at)


HANDLERS: dict[type[m.Command], Callable[[Any, Any], Recorded]] = {
    CreateTask: create_task,
    AssignTask: lambda w, c: _on(w, c, work.assign_task, str(c.task_id), c.assignee, c.queue),
    RescheduleTask: lambda w, c: _on(w, c, work.reschedule_task, str(c.task_id), c.due_at,
                                     c.ends_at, c.reminder_at),
    CompleteTask: lambda w, c: _on(w, c, work.complete_task, str(c.task_id), c.outcome),
    CancelTask: lambda w, c: _on(w, c, work.cancel_task, str(c.task_id), c.reason),
    RouteWork: route_work,
    MoveWork: lambda w, c: _all(w, c, work.move_item, item_kind=c.item_kind,
                                item_id=str(c.item_id), to_agent=c.to_agent, reason=c.reason),
    CreateFollowUp: create_follow_up,
}
