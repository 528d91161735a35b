"""How the bulk importer cuts a history into saves (no store needed)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from commands import messages as m
from commands.bulk import BulkImporter
from commands.hub import Hub


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield h
    h.close()


def test_saves_hold_at_most_chunk_events_and_keep_each_customers_order(hub: Hub) -> None:
    a, b = uuid4(), uuid4()
    batch = [m.LogCall(customer_id=a if i % 3 else b, call_id=f"c{i}") for i in range(23)]
    groups: dict = {}
    for i, cmd in enumerate(batch):
        groups.setdefault(cmd.customer_id, []).append(i)
    units = list(BulkImporter(hub, chunk_events=5)._units(groups, batch))
    assert all(sum(len(ix) for _, ix in unit) <= 5 for unit in units)
    flat = [(cid, i) for unit in units for cid, ix in unit for i in ix]
    assert sorted(i for _, i in flat) == list(range(23))
    for cid in (a, b):
        mine = [i for c, i in flat if c == cid]
        assert mine == sorted(mine) == groups[cid]


def test_large_bodies_cut_saves_by_size_before_count(hub: Hub) -> None:
    cid = uuid4()
    batch = [m.RecordEmail(customer_id=cid, message_id=f"<{i}@x>", from_address="a@example.com",
                           body_text="y" * 60_000) for i in range(10)]
    units = list(BulkImporter(hub, chunk_bytes=256 * 1024)._units({cid: list(range(10))}, batch))
    assert [sum(len(ix) for _, ix in unit) for unit in units] == [4, 4, 2]


def test_a_store_without_a_key_index_falls_back_to_one_command_at_a_time(hub: Hub) -> None:
    assert hub.key_index is None
    cid = uuid4()
    hub.execute(m.RegisterCustomer(customer_id=cid, name="Ada", source_key="r1"))
    cmds = [m.LogCall(customer_id=cid, call_id=f"c{i}") for i in range(3)]
    first = BulkImporter(hub).import_history(cmds + cmds[:1])
    assert [r.recorded.duplicate for r in first] == [False, False, False, True]  # type: ignore[union-attr]
    assert [e.source_key for e in hub.stream(cid)].count("call:c0") == 1
