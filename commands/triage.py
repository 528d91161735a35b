"""Triage: touchpoints from unknown senders, held whole until a person assigns them.

A held touchpoint keeps what arrived sealed under a key of its own (see
``domain.personal.held_subject``). Assigning it records the touchpoint on the
customer's stream and then destroys that key: from then on the customer's
key alone guards the data, and an erasure of the customer reaches it. A crash
between the two is repaired by assigning again (answered as a duplicate).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from commands import email_messages as em
from commands import messages as m
from commands.context import WriteContext
from commands.errors import CustomerNotFoundError
from commands.ports import Recorded
from domain.claims import HeldTouchpoint
from domain.personal import held_subject

_SCAN_BATCH = 500


def hold(w: WriteContext, cmd: m.Touchpoint, key: str, contact: str) -> Recorded:
    """Keep the touchpoint aside for triage, under its source key."""
    held = HeldTouchpoint.hold(
        w.naming.held(key), key, contact, cmd.kind,
        cmd.model_dump(mode="json", exclude={"kind"}, exclude_none=True)
        | {"source_key": key, "occurred_at": (cmd.occurred_at or w.clock()).isoformat()},
    )
    try:
        recordings = w.store.app.save(held)
    except IntegrityError:
        # Already held — or already assigned and recorded: then that record is the answer.
        if (done := w.keys.lookup(key)) is not None:
            return done
        recordings = []
    return Recorded(
        customer_id="", event_ids=[], versions=[0],
        positions=[r.notification.id for r in recordings] or [None],
        duplicate=not recordings, held_for_triage=True,
    )


def is_held(w: WriteContext, key: str) -> bool:
    try:
        w.store.app.repository.get(w.naming.held(key))
    except AggregateNotFoundError:
        return False
    return True


def held_touchpoints(w: WriteContext, limit: int) -> list[HeldTouchpoint]:
    """Touchpoints waiting for triage (a scan of the log: fine for a triage queue)."""
    app = w.store.app
    topic = get_topic(HeldTouchpoint.Held)
    items = []
    start = 1
    while len(items) < limit:
        batch = app.recorder.select_notifications(start, _SCAN_BATCH, topics=[topic])
        if not batch:
            break
        for n in batch:
            held: HeldTouchpoint = app.repository.get(n.originator_id)
            if held.assigned_to is None and not held.erased:
                items.append(held)
        start = batch[-1].id + 1
    return items[:limit]


def assign_held(
    w: WriteContext, source_key: str, customer_id: UUID,
    record: Callable[[m.Touchpoint], Recorded],
) -> Recorded:
    """Record a held touchpoint on ``customer_id`` with ``record`` (same source key: idempotent)."""
    app = w.store.app
    try:
        held: HeldTouchpoint = app.repository.get(w.naming.held(source_key))
    except AggregateNotFoundError as exc:
        raise CustomerNotFoundError(f"nothing held under {source_key!r}") from exc
    if held.erased:
        if held.assigned_to is not None and (done := w.keys.lookup(source_key)) is not None:
            return done  # assigned before: its record is the answer
        raise CustomerNotFoundError(
            f"the touchpoint held under {source_key!r} was erased with its sender's data")
    model = {**m.TOUCHPOINT_COMMANDS, **em.EMAIL_TOUCHPOINTS}[held.command_kind]
    cmd = model.model_validate({**held.command, "customer_id": str(customer_id)})
    result = record(cmd)
    held.assign(result.customer_id)
    if held.pending_events:
        try:
            app.save(held)
        except IntegrityError:
            pass  # assigned concurrently: the touchpoint itself is deduplicated
    shred_held(w, held.id)
    return result


def shred_held(w: WriteContext, held_id: UUID | str) -> bool:
    """Destroy the key sealing a held touchpoint; True if destroyed by this call."""
    if w.shredder is None:
        return False
    destroyed = w.shredder.destroy(held_subject(held_id))
    cache = w.store.app.repository.cache
    if cache is not None:  # the cached copy still holds the opened command
        with suppress(KeyError):
            cache.get(held_id, evict=True)
    return destroyed
