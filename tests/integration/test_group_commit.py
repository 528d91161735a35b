"""The webhooks' group commit: concurrent commands recorded together, each answered alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from channels.phone.group_commit import GroupCommit
from commands import messages as m
from commands.hub import Hub
from domain.customer import Customer
from tests.support.phone import provider, sqlite_hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = sqlite_hub(tmp_path)
    yield h
    h.close()


def test_each_submitted_command_gets_its_own_outcome(hub: Hub) -> None:
    committer = GroupCommit(provider(hub))
    try:
        futures = [committer.submit(m.RecordCallStep(
            call_id=f"CA{i}", step="ringing", sequence=1, from_number=f"+4420794600{i:02d}"))
            for i in range(30)]
        futures.append(committer.submit(m.RecordCallStep(
            customer_id=uuid4(), call_id="nobody", step="ringing")))
        futures.append(committer.submit(m.RecordCallStep(
            call_id="CA0", step="ringing", sequence=1, from_number="+442079460000")))
        outcomes = [f.result(timeout=30) for f in futures]
    finally:
        committer.close()
    assert all(o.recorded is not None and not o.recorded.duplicate for o in outcomes[:30])
    assert outcomes[30].recorded is None and "customer" in (outcomes[30].error or "")
    assert outcomes[31].recorded is not None and outcomes[31].recorded.duplicate
    cid = hub.find_by_contact("phone", "+442079460000")
    assert cid is not None
    steps = [e for e in hub.stream(cid) if isinstance(e, Customer.CallStepRecorded)]
    assert [e.call_id for e in steps] == ["CA0"]
