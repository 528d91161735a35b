"""Every event of a customer's stream reads as a line on the timeline: a subject or a
summary wherever the event has something to say (issues 13, 14)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.catalog import customer_event_classes
from domain.customer import Customer
from projections.events import kind_name, subject_of, summary_of

_NOT_FIELDS = frozenset(("originator_id", "originator_version", "timestamp"))
#: Fields that make an event worth a line of its own: a text, a title, a business object.
_TITLE_LIKE = frozenset((
    "name", "subject", "title", "purpose", "form_name", "reason", "summary", "text",
    "body_text", "notes", "outcome", "to_stage", "order_number", "quote_id",
    "opportunity_id", "case_id", "work_order_id", "contract_id", "product_id",
    "account_id", "consent_channel", "campaign_id", "kind", "fields", "changes", "task_id",
    "item_id",
))


def _fields(cls: type) -> list[str]:
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        names.update(dict.fromkeys(getattr(klass, "__annotations__", {})))
    return [n for n in names if n not in _NOT_FIELDS]


def _sample(cls: type, **given: Any) -> Any:
    """An instance of ``cls`` with every field a recognisable text (or ``given``), made
    without the constructor: only the reading of fields is under test."""
    event = object.__new__(cls)
    values: dict[str, Any] = {name: f"<{name}>" for name in _fields(cls)}
    values.update({name: {name: "<value>"} for name in ("fields", "changes") if name in values})
    values.update(given)
    event.__dict__.update(values)
    return event


CLASSES = sorted(customer_event_classes(), key=lambda c: c.__name__)
TITLED = [c for c in CLASSES if _TITLE_LIKE & set(_fields(c))]


def test_most_events_have_a_title_like_field() -> None:
    """The list below is not vacuous: every business event and most core ones are in it."""
    assert len(TITLED) >= len(CLASSES) - 10
    assert all(c in TITLED for c in CLASSES if issubclass(c, Customer.BusinessEvent))


@pytest.mark.parametrize("cls", TITLED, ids=[c.__name__ for c in TITLED])
def test_every_event_with_a_title_like_field_has_a_line(cls: type) -> None:
    event = _sample(cls)
    assert subject_of(event) or summary_of(event), f"{kind_name(cls)} reads as an empty row"


BUSINESS = [c for c in CLASSES if issubclass(c, Customer.BusinessEvent)]


def test_the_business_areas_have_events() -> None:
    areas = {c.__module__ for c in BUSINESS}
    assert {"domain.sales", "domain.marketing", "domain.service", "domain.dispatch",
            "domain.accounts"} <= areas


@pytest.mark.parametrize("cls", BUSINESS, ids=[c.__name__ for c in BUSINESS])
def test_every_business_event_names_its_object(cls: type) -> None:
    """A business event's row says what it is about even when its text fields are empty
    (a status move carries no text of its own)."""
    blank = {name: None for name in _fields(cls)
             if name in ("subject", "title", "reason", "summary", "text", "notes", "purpose")}
    subject = subject_of(_sample(cls, **blank))
    assert subject, f"{kind_name(cls)} has no subject"
    assert "<" in subject, f"{kind_name(cls)}'s subject names no field value: {subject!r}"


def test_lines_of_the_areas_read_well() -> None:
    from domain.dispatch import WorkOrderScheduled
    from domain.marketing import CampaignEmailQueued, ConsentGiven
    from domain.sales import OrderPlaced, QuoteSent
    from domain.service import CaseOpened, CaseReprioritised

    consent = _sample(ConsentGiven, consent_channel="email", purpose="newsletter")
    assert subject_of(consent) == "email consent: newsletter"
    mail = _sample(CampaignEmailQueued, campaign_id="c-9", purpose="offers")
    assert subject_of(mail) == "campaign email: offers"
    moved = _sample(CaseReprioritised, case_id="k-1", priority="high")
    assert (subject_of(moved), summary_of(moved)) == ("case k-1", "priority: high")
    opened = _sample(CaseOpened, subject="Boiler leaks")
    assert subject_of(opened) == "Boiler leaks"
    quote = _sample(QuoteSent, quote_id="q-2", opportunity_id="o-1", total="90.00",
                    currency="EUR")
    assert (subject_of(quote), summary_of(quote)) == ("quote q-2", "90.00 EUR")
    order = _sample(OrderPlaced, order_number="A-17")
    assert subject_of(order) == "order A-17"
    slot = _sample(WorkOrderScheduled, work_order_id="w-3", window_start="09:00",
                   window_end="11:00")
    assert (subject_of(slot), summary_of(slot)) == (
        "work order w-3", "window_start: 09:00; window_end: 11:00")
