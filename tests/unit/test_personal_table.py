"""Every field of every customer event is classified personal or not (domain.personal)."""

from __future__ import annotations

import typing

import pytest

from domain.catalog import customer_event_classes
from domain.customer import Customer
from domain.personal import CLEAR_FIELDS, PERSONAL_FIELDS, PROVENANCE_CLEAR, PROVENANCE_PERSONAL

_BASE = set(typing.get_type_hints(Customer.Event)) | {"originator_topic"}


def _event_classes() -> list[type]:
    # Core events and every business area's (domain.catalog lists the area modules).
    return customer_event_classes()


@pytest.mark.parametrize("cls", _event_classes(), ids=lambda c: c.__name__)
def test_every_field_of_every_event_is_classified_once(cls: type) -> None:
    name = cls.__name__
    assert name in PERSONAL_FIELDS and name in CLEAR_FIELDS, (
        f"{name} is not in domain.personal: classify each of its fields")
    own = set(typing.get_type_hints(cls)) - _BASE
    personal, clear = PERSONAL_FIELDS[name], CLEAR_FIELDS[name]
    assert not personal & clear, f"{name}: {sorted(personal & clear)} classified twice"
    unclassified = own - personal - clear
    assert not unclassified, f"{name}: classify {sorted(unclassified)} in domain.personal"
    stale = (personal | clear) - own
    assert not stale, f"{name}: {sorted(stale)} are not fields of the event"


def test_the_provenance_is_classified_and_the_table_names_only_real_events() -> None:
    base = set(typing.get_type_hints(Customer.Event))
    assert base - {"originator_id", "originator_version", "timestamp", "originator_id_type"} <= (
        PROVENANCE_CLEAR | PROVENANCE_PERSONAL)
    names = {c.__name__ for c in _event_classes()}
    assert set(PERSONAL_FIELDS) == set(CLEAR_FIELDS) == names


def test_the_readme_publishes_the_table_as_the_code_has_it() -> None:
    from pathlib import Path

    from domain.personal import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the README's personal-data table"


def test_every_field_of_a_quarantined_message_is_classified_once() -> None:
    from domain.mailbox import Mailbox
    from domain.personal import QUARANTINED_CLEAR, QUARANTINED_PERSONAL

    own = set(typing.get_type_hints(Mailbox.MessageQuarantined)) - set(
        typing.get_type_hints(Mailbox.Event)) - {"originator_topic"}
    assert not QUARANTINED_PERSONAL & QUARANTINED_CLEAR
    assert own == QUARANTINED_PERSONAL | QUARANTINED_CLEAR, (
        "classify Mailbox.MessageQuarantined's fields in domain.personal")
