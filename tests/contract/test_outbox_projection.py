"""The outbox is a projection on the engine like every read model: exactly once per event
under concurrent catch-ups, kept by the projection runner, rebuilt equal without sending."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from commands import email_messages as em
from projections.engine import live_generation
from projections.outbox.projection import OutboxProjection
from tests.support.hubs import make_hub
from tests.support.mail import all_events, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import HubOutbox
from touchstream.read_side import ProjectionService

MINUTE = timedelta(minutes=1)


@pytest.fixture(params=["sqlite", "postgres"])
def deps(request: pytest.FixtureRequest) -> Iterator[Dependencies]:
    env = request.getfixturevalue(f"{request.param}_env")
    hub = make_hub(env)
    yield Dependencies(settings_mod.load(env), hub=hub)
    hub.close()


def queue(deps: Dependencies, key: str) -> tuple[UUID, str]:
    deps.hub.execute(em.SendEmail(source_key=key, from_address="mia@shop.example",
                                  to=["ada@example.com"], subject=f"About {key}",
                                  body_text="Hello Ada"))
    (queued,) = [e for e in of_type(all_events(deps.hub), "EmailQueued")
                 if e.source_key.endswith(key)]
    return UUID(str(queued.originator_id).removeprefix("customer-")), str(queued.message_id)


def test_queued_unknown_then_sent_is_followed_with_backoff_and_attempts_never_go_down(
        deps: Dependencies) -> None:
    cid, mid = queue(deps, "q-1")
    outbox = HubOutbox(deps)
    outbox.refresh()
    now = datetime.now(UTC)
    assert [e.message_id for e in outbox.due(now, MINUTE, 8 * MINUTE)] == [mid]
    deps.hub.execute(em.RecordEmailOutcomeUnknown(customer_id=cid, message_id=mid, attempt=2,
                                                  reason="451 later"))
    deps.hub.execute(em.RecordEmailOutcomeUnknown(customer_id=cid, message_id=mid, attempt=1,
                                                  reason="timeout"))  # late, out of order
    outbox.refresh()
    (entry,) = outbox.view.entries()
    assert (entry.status, entry.attempts) == ("queued", 2)
    assert outbox.due(now, MINUTE, 8 * MINUTE) == []  # waits 2 minutes after attempt 2
    assert len(outbox.due(now + 3 * MINUTE, MINUTE, 8 * MINUTE)) == 1
    deps.hub.execute(em.RecordEmailSent(customer_id=cid, message_id=mid, attempt=3,
                                        response="250 ok"))
    outbox.refresh()
    (entry,) = outbox.view.entries()
    assert (entry.status, entry.attempts) == ("sent", 3)
    assert outbox.due(now + 60 * MINUTE, MINUTE, 8 * MINUTE) == []
    assert outbox.message_for_envelope(entry.envelope_id) == mid


def test_interleaved_catch_ups_converge_on_one_row_per_email_and_the_log_head(deps: Dependencies) -> None:
    ids = [queue(deps, f"q-{k}") for k in range(5)]
    first, second = HubOutbox(deps), HubOutbox(deps)
    first.refresh()
    for cid, mid in ids[:3]:
        deps.hub.execute(em.RecordEmailOutcomeUnknown(customer_id=cid, message_id=mid,
                                                      attempt=1, reason="4xx"))
    second.refresh()
    first.refresh()  # nothing new for it: the other advanced the same generation
    entries = first.view.entries()
    assert sorted(e.message_id for e in entries) == sorted(m for _, m in ids)
    assert sorted(e.attempts for e in entries) == [0, 0, 1, 1, 1]
    db = deps.read_store.connect()
    try:
        row = live_generation(db, "outbox")
        assert row is not None and row.position == deps.hub.recorder.max_notification_id()
    finally:
        db.close()


def test_the_projection_runner_keeps_the_outbox_like_every_read_model(
        deps: Dependencies) -> None:
    _, mid = queue(deps, "q-run")
    service = ProjectionService(deps)
    service.start()
    try:
        view = HubOutbox(deps).view
        deadline = time.monotonic() + 30
        while view.position() < int(deps.hub.recorder.max_notification_id() or 0):
            assert time.monotonic() < deadline, "the runner never caught the outbox up"
            time.sleep(0.05)
        assert [e.message_id for e in view.entries()] == [mid]
    finally:
        service.stop()


def test_a_rebuild_equals_the_live_outbox_and_sends_nothing(deps: Dependencies) -> None:
    (cid, mid), _ = queue(deps, "q-a"), queue(deps, "q-b")
    deps.hub.execute(em.RecordEmailSent(customer_id=cid, message_id=mid, attempt=1,
                                        response="250 ok"))
    outbox = HubOutbox(deps)
    outbox.refresh()
    before = outbox.view.entries()
    result = outbox.rebuild()
    assert result.swapped and result.comparison.equal
    assert result.rebuilt_generation > result.live_generation
    assert outbox.view.entries() == before
    assert len(of_type(all_events(deps.hub), "EmailSent")) == 1


def test_the_outbox_is_registered_with_the_read_models() -> None:
    from projections import registry

    assert isinstance(registry.get("outbox"), OutboxProjection)


def test_bounces_and_replies_find_the_sent_mails_customer_and_thread_root(
        deps: Dependencies) -> None:
    cid, first = queue(deps, "q-root")
    deps.hub.execute(em.SendEmail(source_key="q-reply", from_address="mia@shop.example",
                                  to=["ada@example.com"], subject="Re: About q-root",
                                  body_text="More", in_reply_to=first))
    (reply,) = [e for e in of_type(all_events(deps.hub), "EmailQueued")
                if e.source_key.endswith("q-reply")]
    outbox = HubOutbox(deps)  # never refreshed: a miss catches the read model up
    assert outbox.customer_for_message(first) == str(cid)
    assert outbox.customer_for_message("<never-sent@elsewhere.example>") is None
    roots = outbox.sent_roots([reply.message_id, first, "<never-sent@elsewhere.example>"])
    assert roots == {first: first, reply.message_id: first}
    other = HubOutbox(deps)  # an id the hub never makes (not <uuid@domain>): no catch-up
    assert other.sent_roots(["<never-sent@elsewhere.example>"]) == {}
    assert other._caught_up_to is None
