"""Command routes of the work area: ``POST /commands/<name>`` per task transition, the
supervisor's rebalancing move, and the two commands the work policies send (routed too,
so a policy may run outside the hub; their keys make a second send record nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands import messages as m
from commands import work as wc

_STAFF = ("agent", "sales", "service", "dispatcher")
_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_TASK = "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
_IDS = {"customer_id": _CID, "task_id": _TASK}
_CASE = "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f"

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "create-task": (wc.CreateTask, "Create a task or appointment for staff", {
        **_IDS, "task_kind": "call", "title": "Call back about the invoice",
        "due_at": "2026-11-25T10:00:00+01:00", "ends_at": "2026-11-25T10:15:00+01:00",
        "reminder_at": "2026-11-25T09:45:00+01:00", "assignee": "jo", "queue": "billing",
        "link_kind": "case", "link_id": _CASE}),
    "assign-task": (wc.AssignTask, "Assign a task to a staff member (or back to its queue)",
                    {**_IDS, "assignee": "sam"}),
    "reschedule-task": (wc.RescheduleTask, "Move a task's due time (and end, reminder)", {
        **_IDS, "due_at": "2026-11-26T14:00:00+01:00", "ends_at": "2026-11-26T14:30:00+01:00",
        "reminder_at": "2026-11-26T13:45:00+01:00"}),
    "complete-task": (wc.CompleteTask, "Complete a task",
                      {**_IDS, "outcome": "Customer confirmed the refund arrived"}),
    "cancel-task": (wc.CancelTask, "Cancel a task", {**_IDS, "reason": "Customer cancelled"}),
    "move-work": (wc.MoveWork, "Move an open task or case to another staff member (rebalance)",
                  {"customer_id": _CID, "item_kind": "case", "item_id": _CASE,
                   "to_agent": "sam", "reason": "jo is at capacity"}),
    "route-work": (wc.RouteWork, ("Route a new task or case by the routing rules (the work "
                   "policy sends it)"), {
                       "customer_id": _CID, "item_kind": "case", "item_id": _CASE,
                       "channel": "email", "category": "billing",
                       "loads": {"jo": 4, "sam": 2}, "turns": {"billing-de": 17}}),
    "create-follow-up": (wc.CreateFollowUp, ("Create a rule's follow-up task for an event "
                         "(the work policy sends it)"), {
                             "customer_id": _CID, "rule": "complaint-care",
                             "trigger": "complaint-resolved",
                             "origin_event_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
                             "link_id": _CASE, "triggered_at": "2026-11-24T09:30:00+00:00"}),
}

#: route name → roles admitted (admin is always admitted)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    **{name: _STAFF for name in COMMANDS},
    "move-work": ("service", "dispatcher"),  # supervisors
    "route-work": ("adapter",),
    "create-follow-up": ("adapter",),
}
