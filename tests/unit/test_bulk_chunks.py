"""How the bulk importer cuts a history into saves (no store needed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from commands import email_messages as em
from commands import messages as m
from commands.bulk import BulkImporter, _approx_size
from commands.hub import Hub
from tests.support.hubs import make_hub


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


def test_sqlite_cuts_saves_by_count_and_by_memory_only(
    sqlite_env: dict[str, str],
) -> None:
    """SQLite has no pipeline limit: ten 60 KB emails (four saves of ~256 KB on PostgreSQL)
    are one save; its byte limit (16 MiB) only bounds a save's memory."""
    hub = make_hub(sqlite_env)
    try:
        importer = BulkImporter(hub)
        assert (importer.chunk_events, importer.chunk_bytes) == (2_000, 16 * 1024 * 1024)
        cid = uuid4()
        batch = [m.RecordEmail(customer_id=cid, message_id=f"<{i}@x>", from_address="a@example.com",
                               body_text="y" * 60_000) for i in range(10)]
        units = list(importer._units({cid: list(range(10))}, batch))
        assert [sum(len(ix) for _, ix in unit) for unit in units] == [10]
        big = [m.RecordEmail(customer_id=cid, message_id=f"<b{i}@x>",
                             from_address="a@example.com", body_text="y" * 60_000)
               for i in range(600)]  # ~36 MB of text: cut by size well before 2,000
        sizes = [sum(len(ix) for _, ix in unit)
                 for unit in importer._units({cid: list(range(600))}, big)]
        assert sum(sizes) == 600 and len(sizes) == 3 and max(sizes) < 300
    finally:
        hub.close()


def _every_field(cmd: m.Touchpoint) -> int:
    """The size as a walk over every field's value gives it (what ``_approx_size`` was)."""
    size = 0
    for value in cmd.__dict__.values():
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, (list, tuple, dict)) and value:
            size += len(str(value))
    return size


AT = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("cmd", [
    m.LogCall(customer_id=uuid4(), call_id="c1", from_number="+442079460018", queue="q",
              agent="mia", ivr_choices=["2", "1"], duration_s=61, summary="ünï \"q\"",
              occurred_at=AT, actor="pbx", correlation_id="corr"),
    m.LogCall(call_id="c2", from_number="+442079460018"),
    m.RecordCallStep(customer_id=uuid4(), call_id="c1", step="answered", sequence=2,
                     details={"leg": "a", "to": "b"}),
    m.RequestCallback(customer_id=uuid4(), callback_id="cb", requested_for=AT, reason="r"),
    m.RecordEmail(message_id="<m@x>", from_address="a@example.com", to=["b@example.com"],
                  cc=[], references=["<r@x>"], subject="s", body_text="b" * 500,
                  attachments=[m.Attachment(sha256="c" * 64, size=3, content_type="a/b")]),
    m.RecordWebForm(customer_id=uuid4(), form_name="f", submission_id="s",
                    fields={"message": "hello"}),
    m.RecordVisit(customer_id=uuid4(), visit_id="v", visit_kind="field", staff="sam",
                  duration_min=30),
    m.RecordFax(customer_id=uuid4(), fax_id="f1", pages=3),
    em.SendEmail(customer_id=uuid4(), from_address="help@hub.example", to=["a@example.com"],
                 subject="s", body_text="b", source_key="send-1"),
], ids=lambda cmd: type(cmd).__name__)
def test_the_size_is_what_a_walk_over_every_field_gives(cmd: Any) -> None:
    assert _approx_size(cmd) == _every_field(cmd) > 0


def test_a_store_without_a_key_index_falls_back_to_one_command_at_a_time(hub: Hub) -> None:
    assert hub.key_index is None
    cid = uuid4()
    hub.execute(m.RegisterCustomer(customer_id=cid, name="Ada", source_key="r1"))
    cmds = [m.LogCall(customer_id=cid, call_id=f"c{i}") for i in range(3)]
    first = BulkImporter(hub).import_history(cmds + cmds[:1])
    assert [r.recorded.duplicate for r in first] == [False, False, False, True]  # type: ignore[union-attr]
    assert [e.source_key for e in hub.stream(cid)].count("call:c0") == 1
