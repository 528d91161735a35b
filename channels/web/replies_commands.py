"""Command routes of templates, replies, material and territories: ``POST /commands/<name>``.

``send-email`` is the staff reply (plain, or rendered from a template with variables);
``acknowledge-case`` and ``move-territory-opportunity`` are what the policies send
(routed too, so a policy may run outside the hub; their keys make a second send record
nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands import email_messages as em
from commands import messages as m
from commands import replies as rc
from commands import territories as tc

_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_CASE = "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f"
_TEMPLATE = "c0f1e2d3-4b5a-5c6d-8e7f-9a0b1c2d3e4f"

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "save-template": (rc.SaveTemplate, "Add a version of an email or fax template", {
        "name": "auto-ack", "template_channel": "email", "language": "de",
        "fallback_language": "en", "subject": "Re: {{ subject }} [{{ case.reference }}]",
        "body_text": "Hallo {{ customer.name }},\nwir haben Ihre Nachricht erhalten.\n",
        "body_html": "<p>Hallo {{ customer.name }},</p><p>wir haben Ihre Nachricht "
                     "erhalten.</p>"}),
    "send-email": (em.SendEmail, ("Queue an email to a customer (a staff reply), written or "
                   "rendered from a template"), {
                       "customer_id": _CID, "from_address": "jo@shop.example",
                       "to": ["ada@example.com"], "template_id": _TEMPLATE,
                       "variables": {"subject": "Boiler broken",
                                     "answer": "The engineer comes on Monday."},
                       "case_id": _CASE, "in_reply_to": "<m1@example.com>",
                       "references": ["<m1@example.com>"], "source_key": "reply:5521"}),
    "send-material": (rc.SendMaterial, "Send a document from the library by email or fax", {
        "customer_id": _CID, "material_id": "3b" * 32, "name": "Price list 2027.pdf",
        "content_type": "application/pdf", "size": 48213, "send_channel": "email",
        "from_address": "sales@shop.example", "subject": "Our price list",
        "body_text": "Please find our price list attached.\n",
        "send_id": "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d"}),
    "acknowledge-case": (rc.AcknowledgeCase, ("Acknowledge a new case automatically (the "
                         "auto-reply policy sends it)"), {
                             "customer_id": _CID, "case_id": _CASE,
                             "trigger_event_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
                             "template": "auto-ack", "from_address": "support@shop.example",
                             "to": "ada@example.com", "in_reply_to": "<m1@example.com>",
                             "references": ["<m1@example.com>"],
                             "headers": {"Auto-Submitted": "no"}, "bounced": False,
                             "window_days": 4, "variables": {"subject": "Boiler broken"}}),
    "reassign-territory": (tc.ReassignTerritory, ("Give a sales territory to another owner "
                           "(its open opportunities follow)"), {
                               "territory": "berlin", "to_owner": "lee",
                               "source_key": "territory-plan:2027"}),
    "move-territory-opportunity": (tc.MoveTerritoryOpportunity, (
        "Move one open opportunity to its territory's new owner (the territory policy "
        "sends it)"), {
            "customer_id": _CID, "opportunity_id": "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
            "territory": "berlin", "move_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "to_owner": "lee"}),
}

#: route name → roles admitted (admin is always admitted)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    "save-template": ("service", "marketing", "sales"),
    "send-email": ("agent", "sales", "service", "marketing"),
    "send-material": ("agent", "sales", "service", "marketing"),
    "acknowledge-case": ("adapter",),
    "reassign-territory": ("sales",),
    "move-territory-opportunity": ("adapter",),
}
