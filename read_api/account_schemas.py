"""Response schemas and query models of the account routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import Account
from projections.accounts.projection import account_kind
from projections.events import all_kinds
from read_api.schemas import TimelineEntryPublic, TimelineQuery

_ACCOUNT = "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10"
_PARENT = "6f1c1d8e-2a77-4d6b-a0f6-0e2f3f6b9a11"
_PERSON = "4f6c4a3e-8d1b-4c55-9b0e-1f2a3b4c5d6e"
ACCOUNT_KINDS = tuple(sorted(account_kind(c) for c in (
    Account.Opened, Account.Changed, Account.ParentSet, Account.PartnerAssigned,
    Account.ContactJoined, Account.ContactLeft)))
AccountTimelineKind = Literal[(*all_kinds(), *ACCOUNT_KINDS)]  # type: ignore[misc]


class AddressPublic(BaseModel):
    kind: str
    street: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str


class AccountPublic(BaseModel):
    account_id: str
    name: str
    vat_number: str | None = Field(description="Compact form, country prefix first.")
    company_number: str | None
    industry: str | None
    size: str | None
    owner: str | None
    parent_id: str | None
    partner_id: str | None
    addresses: list[AddressPublic]
    postcode: str | None = Field(description="Of the first address.")
    country: str | None
    opened_at: str

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": _ACCOUNT, "name": "Analytical Engines Ltd", "vat_number": "GB980780684",
        "company_number": None, "industry": "manufacturing", "size": "50-249", "owner": "mia",
        "parent_id": _PARENT, "partner_id": None,
        "addresses": [{"kind": "registered", "street": "1 Engine Row", "city": "London",
                       "postcode": "SW1A 1AA", "country": "GB"}],
        "postcode": "SW1A 1AA", "country": "GB", "opened_at": "2026-01-05T09:00:00+00:00"}]})


class AccountPagePublic(BaseModel):
    items: list[AccountPublic]
    next_cursor: str | None


class AccountRefPublic(BaseModel):
    account_id: str
    name: str


class ContactPeriodPublic(BaseModel):
    link_id: str
    account_id: str
    customer_id: str
    role: str
    joined_at: str
    left_at: str | None = Field(description="null while the person still acts for the account.")


class AccountDetailPublic(AccountPublic):
    ancestors: list[AccountRefPublic] = Field(description="Parent first, then its parent, …")
    children: list[AccountRefPublic]
    contacts: list[ContactPeriodPublic] = Field(description="Every period, oldest first.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **AccountPublic.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
        "ancestors": [{"account_id": _PARENT, "name": "Engines Group plc"}], "children": [],
        "contacts": [{"link_id": "2d1f0c8b-7a6e-5d4c-9b3a-1f0e2d3c4b5a", "account_id": _ACCOUNT,
                      "customer_id": _PERSON, "role": "buyer",
                      "joined_at": "2026-01-05T09:00:00+00:00", "left_at": None}]}]})


class AccountTimelineEntryPublic(TimelineEntryPublic):
    customer_id: str | None = Field(  # type: ignore[assignment]
        description="The contact whose event it is; null for the account's own events.")


class AccountTimelinePagePublic(BaseModel):
    account_id: str
    items: list[AccountTimelineEntryPublic]
    next_cursor: str | None
    as_of: int


class AccountTimelineQuery(TimelineQuery):
    kind: list[AccountTimelineKind] = Field(  # type: ignore[assignment]
        default_factory=list, max_length=10, examples=[["call", "account_contact_joined"]],
        description="Repeatable.")
