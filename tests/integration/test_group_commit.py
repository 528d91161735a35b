"""The webhooks' group commit: concurrent commands recorded together, each answered alone."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from channels.phone.directory import SQLiteCallDirectory
from channels.phone.group_commit import CallNotKnownError, CallPlace, GroupCommit
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


def test_call_steps_are_placed_by_the_call_directory_or_their_number(
        hub: Hub, tmp_path: Path) -> None:
    directory = SQLiteCallDirectory(tmp_path / "calls.db")
    committer = GroupCommit(provider(hub))
    number = "+442079460077"
    try:
        first = committer.submit(m.RecordCallStep(  # a new number: its prospect registered
            call_id="CA1", step="ringing", sequence=1, from_number=number),
            CallPlace(directory, "CA1")).result(timeout=30)
        assert first.recorded is not None
        cid = first.recorded.customer_id
        assert directory.remembers("CA1", cid)  # noted before the answer
        later = [committer.submit(m.RecordCallStep(call_id="CA1", step="answered", sequence=2),
                                  CallPlace(directory, "CA1")),  # no number: the directory
                 committer.submit(m.RecordCallStep(call_id="CA2", step="ringing", sequence=1,
                                                   from_number=number),
                                  CallPlace(directory, "CA2"))]  # a known number: its claim
        unknown = committer.submit(m.RecordCallStep(call_id="CA9", step="answered", sequence=2),
                                   CallPlace(directory, "CA9"))
        outcomes = [f.result(timeout=30) for f in later]
        with pytest.raises(CallNotKnownError):
            unknown.result(timeout=30)
    finally:
        committer.close()
        directory.close()
    assert [o.recorded.customer_id for o in outcomes if o.recorded] == [cid, cid]
    assert SQLiteCallDirectory(tmp_path / "calls.db").customers_of(["CA1", "CA2", "CA9"]) == {
        "CA1": UUID(cid), "CA2": UUID(cid)}
    steps = [e for e in hub.stream(UUID(cid)) if isinstance(e, Customer.CallStepRecorded)]
    assert sorted((e.call_id, e.step) for e in steps) == [
        ("CA1", "answered"), ("CA1", "ringing"), ("CA2", "ringing")]


def test_numbered_steps_are_placed_by_one_read_of_their_claims(
        hub: Hub, tmp_path: Path) -> None:
    """The placer reads a batch's claims together (``Hub.known_owners``), never one claim
    per number; each step still goes to its number's owner, and a number that is no number
    is refused as one command would refuse it."""
    owners = {n: hub.execute(m.RegisterCustomer(
        name=f"C{n}", source_key=f"reg-{n}",
        contact_points=[m.ContactPointIn(kind="phone", value=f"+4420794601{n:02d}")],
    )).customer_id for n in range(5)}
    reads: Counter[str] = Counter()
    claims = hub.context.claims
    claims.owner = counted(reads, "one claim", claims.owner)  # type: ignore[method-assign]
    recorder: Any = hub.recorder
    recorder.select_streams = counted(reads, "claims of a batch", recorder.select_streams)
    directory = SQLiteCallDirectory(tmp_path / "calls.db")
    committer = GroupCommit(provider(hub))
    try:
        futures = [committer.submit(m.RecordCallStep(
            call_id=f"CN{i}", step="ringing", sequence=1, from_number=f"+4420794601{i % 5:02d}"),
            CallPlace(directory, f"CN{i}")) for i in range(20)]
        bad = committer.submit(m.RecordCallStep(
            call_id="CNX", step="ringing", sequence=1, from_number="not a number"),
            CallPlace(directory, "CNX"))
        outcomes = [f.result(timeout=30) for f in futures]
        refused = bad.result(timeout=30)
    finally:
        committer.close()
        directory.close()
    assert [o.recorded.customer_id for o in outcomes if o.recorded] == [
        owners[i % 5] for i in range(20)]
    assert refused.recorded is None and "not a phone number" in (refused.error or "")
    assert reads["one claim"] == 0  # one claim per number was the old placer's read
    assert 1 <= reads["claims of a batch"] <= len(futures)


def counted(calls: Counter[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return method(*args, **kwargs)
    return call


def test_waiters_on_an_event_loop_each_get_their_own_outcome(hub: Hub, tmp_path: Path) -> None:
    """``wait_for``: a batch's waiters are answered together on their loop, each with its
    own outcome (recorded, duplicate, a call not known), after the call is noted."""
    directory = SQLiteCallDirectory(tmp_path / "calls.db")
    committer = GroupCommit(provider(hub))
    number = "+442079460078"

    async def send() -> list[object]:
        first = await committer.wait_for(m.RecordCallStep(
            call_id="CB1", step="ringing", sequence=1, from_number=number),
            CallPlace(directory, "CB1"))
        steps = [m.RecordCallStep(call_id="CB1", step="answered", sequence=2,
                                  source_key=f"cb1-answered-{i % 2}") for i in range(6)]
        rest = await asyncio.gather(
            *(committer.wait_for(cmd, CallPlace(directory, "CB1")) for cmd in steps),
            committer.wait_for(m.RecordCallStep(call_id="CB9", step="ended", sequence=3),
                               CallPlace(directory, "CB9")),
            return_exceptions=True)
        return [first, *rest]

    try:
        first, *answered, unknown = asyncio.run(asyncio.wait_for(send(), 30))
    finally:
        committer.close()
        directory.close()
    assert first.recorded is not None  # type: ignore[attr-defined]
    cid = first.recorded.customer_id  # type: ignore[attr-defined]
    assert isinstance(unknown, CallNotKnownError)
    recorded = [a.recorded for a in answered]  # type: ignore[attr-defined]
    assert all(r is not None and r.customer_id == cid for r in recorded)
    assert sorted(r.duplicate for r in recorded) == [False, False, True, True, True, True]
    steps = [e for e in hub.stream(UUID(cid)) if isinstance(e, Customer.CallStepRecorded)]
    assert len(steps) == 3  # ringing and two distinct answered keys, never a duplicate
