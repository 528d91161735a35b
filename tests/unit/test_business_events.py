"""A business area's event rides the customer's stream like the core ones: classified,
encrypted with the customer's key, projected, erased; other aggregates reach only the
read models that consume them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate

from commands import messages as m
from commands.hub import Hub
from domain.customer import Customer, Provenance
from domain.errors import CustomerErasedError
from projections import registry
from projections.engine import Names, Projection, Table, Worker
from projections.store import Db, ReadStore
from projections.timeline.view import TimelineView
from tests.support.readside import ListSource


class Widget(Aggregate):
    """Not a customer: a read model may still follow it."""

    class Made(Aggregate.Created):
        label: str

    def __init__(self, label: str) -> None:
        self.label = label


class Pledged(Customer.BusinessEvent):
    """A stand-in business event: one personal field, one not."""

    amount: str
    note: str

    def apply(self, aggregate: Any) -> None:
        aggregate.area("pledges")[str(self.event_id)] = self.amount


@pytest.fixture
def classified(monkeypatch: pytest.MonkeyPatch) -> None:
    from domain import personal

    monkeypatch.setitem(personal.PERSONAL_FIELDS, "Pledged", frozenset({"note"}))
    monkeypatch.setitem(personal.CLEAR_FIELDS, "Pledged", frozenset({"amount"}))


def _pledge(hub: Hub, customer_id: Any, key: str) -> None:
    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        customer.record_business(Pledged, next(provs), amount="12.50", note="secret-canary-77")

    hub.record_on(m.AddNote(customer_id=customer_id, text="x", source_key=key), customer_id,
                  decide)


def test_a_business_event_is_sealed_projected_and_erased_with_its_customer(
        sqlite_env: dict[str, str], classified: None) -> None:
    from touchstream.bootstrap import bootstrap

    deps = bootstrap(sqlite_env)
    try:
        hub = deps.hub
        cid = uuid4()
        hub.register_customer(m.RegisterCustomer(customer_id=cid, name="Ada"))
        _pledge(hub, cid, "pledge-1")
        _pledge(hub, cid, "pledge-1")  # a retry records nothing new
        stored = hub.recorder.select_notifications(1, 10)
        pledges = [n for n in stored if n.topic.endswith(":Pledged")]
        assert len(pledges) == 1
        state = json.loads(pledges[0].state)
        assert state["amount"] == "12.50" and "note" not in state and "_sealed" in state
        assert b"secret-canary-77" not in pledges[0].state
        assert list(hub.customer(cid).area("pledges").values()) == ["12.50"]

        items = deps.event_source().decode(stored)  # decrypted as the read side reads it
        assert type(items[-1][1]) is Pledged and items[-1][1].note == "secret-canary-77"

        deps.eraser.erase(cid, "ticket 1", "admin")
        erased = deps.event_source().decode(hub.recorder.select_notifications(1, 10))
        pledge = next(e for _, e in erased if type(e) is Pledged)
        assert pledge.amount == "12.50" and pledge.note is None
        with pytest.raises(CustomerErasedError):
            _pledge(hub, cid, "pledge-2")
    finally:
        deps.close()


class WidgetLabels(Projection):
    name: ClassVar[str] = "widget_labels_test"
    tables: ClassVar[tuple[Table, ...]] = (Table("label", ("label",), ("label",)),)
    consumes: ClassVar[tuple[type, ...]] = (Widget.Made,)

    def ddl(self, dialect: str) -> list[str]:
        return ["CREATE TABLE {label} (label TEXT PRIMARY KEY)"]

    def apply(self, db: Db, t: Names, items: Sequence[Any]) -> None:
        for _, e in items:
            assert isinstance(e, Widget.Made)
            db.execute(f"INSERT INTO {t.label} (label) VALUES (?)", (e.label,))


def test_read_models_get_only_the_event_classes_they_consume(tmp_path: Path) -> None:
    from tests.support.readside import Story

    story = Story()
    ada = story.register("Ada Lovelace")
    source = ListSource()
    for e in ada.collect_events():
        source.append(e)
    widget = Widget(label="w1")
    for e in widget.collect_events():
        source.items.append((source.head() + 1, e))
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    db = store.connect()
    try:
        Worker(db, source, [(WidgetLabels(), None), (registry.get("timeline"), None)]).catch_up()  # type: ignore[arg-type]
        names = WidgetLabels().names(1)
        assert db.all(f"SELECT label FROM {names.label}") == [("w1",)]
    finally:
        db.close()
    page = TimelineView(store).page(str(ada.id))
    assert [i["kind"] for i in page.items] == ["registered"]
