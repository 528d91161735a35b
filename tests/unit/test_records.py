"""Commands on non-customer aggregates: once per source key, on fresh state after a race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands import messages as m
from commands.records import RecordNotFoundError, RecordProvenance, load, on_record
from domain.records import Record
from tests.support.hubs import make_hub


class Tally(Record):
    class Opened(Record.Created):
        label: str

    class Bumped(Record.Event):
        by: int

        def apply(self, aggregate: Any) -> None:
            aggregate.total += self.by

    def __init__(self, label: str, **_: Any) -> None:
        self.label = label
        self.total = 0


def _open(record: Tally | None, provs: Iterator[RecordProvenance], rid: UUID) -> Tally:
    assert record is None
    return Tally._create(Tally.Opened, id=rid, label="t", **next(provs).fields())


def _bump(record: Tally | None, provs: Iterator[RecordProvenance]) -> Tally:
    assert record is not None
    record.trigger_event(Tally.Bumped, by=1, **next(provs).fields())
    return record


def test_a_retried_command_on_a_record_is_a_duplicate_and_races_all_count(
        sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    w = hub.context
    rid = uuid4()
    first = on_record(w, "tally", rid, m.AddNote(customer_id=rid, text="o", source_key="open"),
                      lambda r, p: _open(r, p, rid))
    again = on_record(w, "tally", rid, m.AddNote(customer_id=rid, text="o", source_key="open"),
                      lambda r, p: _open(r, p, rid))
    assert not first.duplicate and again.duplicate and again.versions == first.versions

    def bump(n: int) -> None:
        for i in range(5):
            on_record(w, "tally", rid, m.AddNote(customer_id=rid, text="b",
                                                  source_key=f"bump-{n}-{i}"), _bump)

    threads = [threading.Thread(target=bump, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bump(0)  # all retries
    tally = load(w, "tally", rid)
    assert tally.total == 15 and tally.version == 15
    with pytest.raises(RecordNotFoundError):
        load(w, "tally", uuid4())


def test_an_id_of_one_kind_never_loads_as_another(sqlite_env: dict[str, str]) -> None:
    """On the SQL stores every aggregate id is a bare UUID: a technician's id sent as a
    customer id (or a customer's as a record id) must answer not found, not crash."""
    from commands.errors import CustomerNotFoundError

    hub = make_hub(sqlite_env)
    w = hub.context
    rid = uuid4()
    on_record(w, "tally", rid, m.AddNote(customer_id=rid, text="o", source_key="open-x"),
              lambda r, p: _open(r, p, rid))
    with pytest.raises(CustomerNotFoundError):
        hub.customer(rid)
    with pytest.raises(CustomerNotFoundError):
        hub.execute(m.AddNote(customer_id=rid, text="to a record?", source_key="note-x"))
    cid = UUID(hub.execute(m.RegisterCustomer(name="Ada", source_key="ada-x")).customer_id)
    with pytest.raises(RecordNotFoundError):
        load(w, "tally", cid)
    with pytest.raises(RecordNotFoundError):
        on_record(w, "tally", cid, m.AddNote(customer_id=cid, text="b", source_key="bump-x"),
                  _bump)
    with pytest.raises(RecordNotFoundError):
        load(w, "other-kind", rid)
