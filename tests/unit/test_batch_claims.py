"""The bulk path finds the owners of a batch's senders in one read of their claims."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from commands import messages as m
from commands.bulk import BulkImporter
from commands.hub import Hub
from tests.support.hubs import make_hub, write_env


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = make_hub(write_env("sqlite", tmp_path / "data"))
    yield h
    h.close()


def counted(calls: Counter[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return method(*args, **kwargs)
    return call


def test_a_batch_reads_its_senders_claims_once_and_records_each_on_its_owner(hub: Hub) -> None:
    known = {i: UUID(hub.execute(m.RegisterCustomer(
        name=f"C{i}", source_key=f"reg-{i}",
        contact_points=[m.ContactPointIn(kind="email", value=f"c{i}@example.com")],
    )).customer_id) for i in range(5)}
    calls: Counter[str] = Counter()
    claims = hub.context.claims
    claims.owner = counted(calls, "one owner", claims.owner)  # type: ignore[method-assign]
    claims.get = counted(calls, "one claim", claims.get)  # type: ignore[method-assign]
    recorder: Any = hub.recorder
    recorder.select_streams = counted(calls, "claims of a batch", recorder.select_streams)
    batch = [m.RecordEmail(message_id=f"<{n}@x>", from_address=f"C{n % 10}@Example.com")
             for n in range(30)]  # ten senders, five of them new

    results = BulkImporter(hub).import_history(batch)

    # one read for the batch; a claim alone only where a new sender's prospect takes it
    assert calls == {"claims of a batch": 1, "one claim": 5}
    owners = [UUID(r.recorded.customer_id) for r in results]  # type: ignore[union-attr]
    for n, owner in enumerate(owners):
        i = n % 10
        assert owner == (known[i] if i < 5 else hub.naming.prospect(f"email:c{i}@example.com"))
    assert Counter(owners) == {owner: 3 for owner in set(owners)}  # one prospect per sender
    again = BulkImporter(hub).import_history(batch)  # all recorded: no claim is read at all
    assert all(r.recorded.duplicate for r in again)  # type: ignore[union-attr]
    assert calls == {"claims of a batch": 1, "one claim": 5}
