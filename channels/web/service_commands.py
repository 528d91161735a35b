"""Command routes of the service area: ``POST /commands/<name>`` per case transition,
complaint step, CSAT answer, contract and installed product (merged into
``channels.web.command_routes``' tables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands import messages as m
from commands import service as sc

_SERVICE = ("agent", "service")
_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_CASE = "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f"
_IDS = {"customer_id": _CID, "case_id": _CASE}

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "open-case": (sc.OpenCase, "Open a case (from a touchpoint or by an agent)", {
        **_IDS, "category": "billing", "priority": "high", "channel": "email",
        "queue": "billing", "subject": "Invoice 2026-114 charged twice",
        "origin_event_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"}),
    "assign-case": (sc.AssignCase, "Assign a case to a queue and agent",
                    {**_IDS, "queue": "billing", "agent": "jo"}),
    "reprioritise-case": (sc.ReprioritiseCase, "Change a case's priority",
                          {**_IDS, "priority": "urgent"}),
    "link-touchpoint": (sc.LinkTouchpoint, "Link another touchpoint to a case",
                        {**_IDS, "event_id": "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"}),
    "case-note": (sc.AddCaseNote, "Add an internal or shared note to a case",
                  {**_IDS, "text": "Refund requested from finance.", "visibility": "internal"}),
    "wait-on-customer": (sc.WaitOnCustomer, "Wait on the customer (SLA clocks stop)",
                         {**_IDS, "reason": "Asked for the invoice number"}),
    "resume-case": (sc.ResumeCase, "Resume a case waiting on the customer", dict(_IDS)),
    "resolve-case": (sc.ResolveCase, "Resolve a case (first-contact resolution derived)",
                     {**_IDS, "resolution_code": "refund"}),
    "reopen-case": (sc.ReopenCase, "Reopen a resolved case",
                    {**_IDS, "reason": "Charged again"}),
    "close-case": (sc.CloseCase, "Close a resolved case", dict(_IDS)),
    "offer-compensation": (sc.OfferCompensation, "Offer compensation on a complaint",
                           {**_IDS, "amount": "25.00", "currency": "EUR"}),
    "answer-compensation": (sc.AnswerCompensation, "Record the customer's answer to an offer",
                            {**_IDS, "accepted": True}),
    "schedule-follow-up": (sc.ScheduleFollowUp, "Schedule a follow-up after a complaint",
                           {**_IDS, "on": "2026-12-01", "follow_up_channel": "phone"}),
    "record-satisfaction": (sc.RecordSatisfaction, "Record a CSAT answer on a resolved case",
                            {**_IDS, "score": 4, "comment": "Quick and friendly"}),
    "add-contract": (sc.AddContract, "Add a service contract", {
        "customer_id": _CID, "contract_id": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "covered_products": ["boiler-x"],
        "sla_policy": "standard", "visits_included": 2}),
    "end-contract": (sc.EndContract, "End a service contract early", {
        "customer_id": _CID, "contract_id": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
        "ends_on": "2026-06-30"}),
    "install-product": (sc.RecordInstalledProduct, "Record an installed product", {
        "customer_id": _CID, "product_id": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "product_code": "boiler-x", "serial_number": "SN-0042", "installed_on": "2025-03-14"}),
    "remove-product": (sc.RemoveInstalledProduct, "Remove an installed product", {
        "customer_id": _CID, "product_id": "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "reason": "Replaced"}),
}

#: route name → roles admitted (admin is always admitted)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    **{name: _SERVICE for name in COMMANDS},
    # CSAT answers also come from the survey adapter
    "record-satisfaction": (*_SERVICE, "adapter"),
}
