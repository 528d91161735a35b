"""Command routes of accounts, contact links and duplicate decisions (merged into ``command_routes.COMMANDS``).

A VAT number or postcode that fails its check answers 422 with the reason (the
command models validate them); a cycle in the hierarchy, an overlapping
contact period or a merged person answers 409; an unknown account 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands import accounts as a
from commands import messages as m
from commands import quality as q

_ACCOUNT = "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10"
_PARENT = "6f1c1d8e-2a77-4d6b-a0f6-0e2f3f6b9a11"
_PERSON = "4f6c4a3e-8d1b-4c55-9b0e-1f2a3b4c5d6e"

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "open-account": (a.OpenAccount, "Open an account (a company)", {
        "name": "Analytical Engines Ltd", "vat_number": "GB 980 7806 84",
        "industry": "manufacturing", "size": "50-249", "owner": "mia",
        "addresses": [{"kind": "registered", "street": "1 Engine Row", "city": "London",
                       "postcode": "SW1A 1AA", "country": "GB"}],
        "source_key": "crm-import:account:7"}),
    "change-account": (a.ChangeAccount, "Change an account's name, identifiers, size, owner…", {
        "account_id": _ACCOUNT, "size": "250-999", "owner": "jonas"}),
    "set-account-parent": (a.SetAccountParent, "Hang an account under another (or none)", {
        "account_id": _ACCOUNT, "parent_id": _PARENT}),
    "assign-account-partner": (a.AssignAccountPartner, "Assign an account to a partner", {
        "account_id": _ACCOUNT, "partner_id": "acme-resellers"}),
    "link-contact": (a.LinkContact, "A person begins to act for an account", {
        "account_id": _ACCOUNT, "customer_id": _PERSON, "role": "buyer",
        "joined_at": "2026-01-05T09:00:00+00:00"}),
    "unlink-contact": (a.UnlinkContact, "A person stops acting for an account", {
        "account_id": _ACCOUNT, "customer_id": _PERSON,
        "left_at": "2026-06-30T17:00:00+00:00"}),
    "move-contact": (a.MoveContact, "A person moves from one account to another", {
        "customer_id": _PERSON, "from_account_id": _ACCOUNT, "to_account_id": _PARENT,
        "role": "buyer", "moved_at": "2026-07-01T09:00:00+00:00"}),
    "reject-duplicate": (q.RejectDuplicate, "Not duplicates: never suggest the pair again", {
        "pair_kind": "customer", "first_id": _PERSON,
        "second_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"}),
    "accept-duplicate": (q.AcceptDuplicate, "Duplicates: merge them (reversible)", {
        "duplicate_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "survivor_id": _PERSON}),
}

_SALES = ("agent", "sales", "service")
#: route name → roles admitted (admin is always admitted by ``authorize``)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    "open-account": (*_SALES, "adapter"),
    "change-account": _SALES,
    "set-account-parent": ("sales",),
    "assign-account-partner": ("sales",),
    "link-contact": (*_SALES, "adapter"),
    "unlink-contact": _SALES,
    "move-contact": _SALES,
    "reject-duplicate": ("service",),  # as merges: service (and admin)
    "accept-duplicate": ("service",),
}
