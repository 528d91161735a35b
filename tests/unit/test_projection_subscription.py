"""The runner following the log through a catch-up subscription, without EventStoreDB.

On EventStoreDB the runner follows ``$all`` through the recorder's
``subscribe(gt=…)``. No such server runs here, so this drives the same code
path with the library's in-memory application recorder, whose ``subscribe``
is a real catch-up subscription (it catches up, then blocks for new events).
The events are the write model's own, recorded on SQLite and copied across in
order; the read models are in SQLite with the engine's tracking rows.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from commands import messages as m
from commands.hub import Hub
from projections import registry
from projections.engine import EventSource
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from projections.summary.view import SummaryView
from replays.rebuild import rebuild
from tests.support.demo import T0, seed_demo
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

NAMES = ["timeline", "summary"]


class SubscribedRecorder(POPOApplicationRecorder):
    """The in-memory recorder, noting where each subscription started."""

    def __init__(self) -> None:
        super().__init__()
        self.started_after: list[int | None] = []
        self.subscriptions: list[Any] = []
        self.hold: threading.Barrier | None = None

    def hold_next(self, parties: int) -> None:
        """The next ``parties`` subscriptions wait for each other before any is returned:
        each runner has read its start from the tracking rows before any applies."""
        self.hold = threading.Barrier(parties, action=lambda: setattr(self, "hold", None))

    def subscribe(self, gt: int | None = None, topics: Any = ()) -> Any:
        self.started_after.append(gt)
        hold = self.hold
        if hold is not None:
            hold.wait(timeout=20)
        sub = super().subscribe(gt, topics)
        self.subscriptions.append(sub)
        return sub


class Log:
    """The hub's events copied, in order, into the subscribed recorder."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.recorder = SubscribedRecorder()
        self.copied = 0

    def sync(self) -> int:
        notes = self.hub.recorder.select_notifications(self.copied, 10_000,
                                                       inclusive_of_start=False)
        if notes:
            self.recorder.insert_events([StoredEvent(n.originator_id, n.originator_version,
                                                     n.topic, n.state) for n in notes])
            self.copied = int(notes[-1].id)
        return int(self.recorder.max_notification_id() or 0)

    def source(self, subscribe: bool = True) -> EventSource:
        return EventSource(self.recorder, self.hub.mapper, subscribe=subscribe)


@pytest.fixture
def hub(sqlite_env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(sqlite_env)
    yield h
    h.close()


def _positions(store: ReadStore) -> list[int]:
    db = store.connect()
    try:
        return [int(r[0]) for r in db.all("SELECT position FROM ts_projection WHERE live=1")]
    except sqlite3.OperationalError:  # the runner has not created the tracking table yet
        return []
    finally:
        db.close()


def _until(cond: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _phone_touches(store: ReadStore, customer: str) -> int:
    summary = SummaryView(store).summary(customer)
    assert summary is not None
    return int(summary["channels"]["phone"]["touches"])


def _calls(hub: Hub, customer: str, prefix: str, n: int) -> None:
    for i in range(n):
        hub.execute(m.LogCall(customer_id=customer, call_id=f"{prefix}{i}",  # type: ignore[arg-type]
                              summary=f"call {i}", occurred_at=T0))


def test_runner_follows_a_subscription_from_the_tracked_position_exactly_once(
        hub: Hub, sqlite_env: dict[str, str], tmp_path: Path) -> None:
    sql_source = Dependencies(settings_mod.load(sqlite_env), hub=hub).event_source()
    assert not sql_source.subscribes  # the SQL stores keep polling
    sql_source.close()
    ids = seed_demo(hub)
    _calls(hub, ids["bob"], "a", 30)
    log = Log(hub)
    head = log.sync()
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    projections = registry.select(NAMES)

    def at_head() -> bool:
        found = _positions(store)
        return len(found) == len(NAMES) and min(found) == head

    first = ProjectionRunner(store, log.source, projections, batch=7)
    first.start()
    try:
        _until(at_head, "the catch-up from the start")
        touches = _phone_touches(store, ids["bob"])
        _calls(hub, ids["bob"], "b", 20)  # new events reach a subscription already caught up
        head = log.sync()
        _until(at_head, "the new events")
        # The subscription ends on its own (a server going away): the runner starts a
        # new one from the tracked position.
        log.recorder.subscriptions[-1].stop()
        _calls(hub, ids["bob"], "c", 10)
        head = log.sync()
        _until(at_head, "the events after a dropped subscription")
    finally:
        first.stop()
    assert not first.running
    assert log.recorder.started_after[0] is None  # nothing tracked yet: from the start
    assert len(log.recorder.started_after) == 2 and log.recorder.started_after[1] is not None
    assert not [t for t in threading.enumerate() if t.name == "touchstream-subscription"]

    # Resumed by two runners at once from the tracked position (an overlap, as
    # when a lease passes while its old holder still runs): nothing applied twice.
    stopped_at = min(_positions(store))
    _calls(hub, ids["bob"], "d", 25)
    head = log.sync()
    runners = [ProjectionRunner(store, log.source, projections, batch=5) for _ in range(2)]
    log.recorder.hold_next(2)  # else the second may start after the first caught up
    for r in runners:
        r.start()
    try:
        _until(at_head, "the resumed runners")
    finally:
        for r in runners:
            r.stop()
    assert log.recorder.started_after[2:] == [stopped_at, stopped_at]
    assert type(first.last_error).__name__ == "SubscriptionEndedError"
    assert all(r.last_error is None for r in runners)

    assert _phone_touches(store, ids["bob"]) == touches + 20 + 10 + 25
    polled = log.source(subscribe=False)
    results = rebuild(store, polled, projections, verify_only=True, batch=11)
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]
    assert {r.comparison.position for r in results} == {head}

