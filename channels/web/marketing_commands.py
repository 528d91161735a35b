"""Marketing's command routes (``POST /commands/<name>``): consent, campaigns, segments.

Merged into ``channels.web.command_routes``' tables. Campaign sends and double
opt-in requests are not here: their emails carry links the hub signs, so they
have routes of their own (``touchstream.marketing_routes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands import marketing as cm
from commands import messages as m

_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_CAMPAIGN = "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f"
_SEGMENT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"

#: route name → roles admitted (admin is always admitted).
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    "give-consent": ("marketing", "agent", "sales", "service", "adapter"),
    "withdraw-consent": ("marketing", "agent", "sales", "service", "adapter"),
    "expire-consents": ("marketing",),
    "define-campaign": ("marketing",),
    "launch-campaign": ("marketing",),
    "close-campaign": ("marketing",),
    "define-segment": ("marketing",),
}

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "give-consent": (cm.GiveConsent, "Record consent given, with its evidence", {
        "customer_id": _CID, "consent_channel": "email", "purpose": "marketing",
        "evidence_kind": "form-submission", "evidence_id": "sub-2026-0042",
        "expires_at": "2028-11-24T00:00:00+00:00"}),
    "withdraw-consent": (cm.WithdrawConsent, "Withdraw a consent", {
        "customer_id": _CID, "consent_channel": "phone", "purpose": "marketing",
        "reason": "request", "source_key": "crm-ticket-881"}),
    "expire-consents": (cm.ExpireConsents, "Record the expiry of consents past their end", {
        "customer_id": _CID, "as_of": "2026-11-24T00:00:00+00:00"}),
    "define-campaign": (cm.DefineCampaign, "Define a campaign", {
        "campaign_id": _CAMPAIGN, "name": "Spring offer 2027", "channel": "email",
        "purpose": "marketing", "budget": "1800.00", "currency": "EUR",
        "starts_on": "2027-03-01", "ends_on": "2027-03-31", "segment_id": _SEGMENT,
        "code": "SPRING27", "attribution_window_days": 21}),
    "launch-campaign": (cm.LaunchCampaign, "Launch a defined campaign",
                        {"campaign_id": _CAMPAIGN}),
    "close-campaign": (cm.CloseCampaign, "Close a launched campaign",
                       {"campaign_id": _CAMPAIGN}),
    "define-segment": (cm.DefineSegment, "Define or redefine a segment by its rule", {
        "segment_id": _SEGMENT, "name": "Consenting prospects and loyal buyers", "rule": {
            "all": [{"consent": "email:marketing"},
                    {"any": [{"lifecycle": ["prospect", "target"]},
                             {"rfm": {"r_min": 4, "f_min": 3, "m_min": 3}}]},
                    {"not": {"last_contact_older_than_days": 365}}]}}),
}
