"""Mailbox commands: messages kept aside and folder renumberings, on the mailbox's stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from commands import email_messages as em
from commands import messages as m
from commands.context import WriteContext
from commands.ports import Recorded
from commands.provenance import source_key
from commands.retry import TryAgain, retrying
from domain.mailbox import Mailbox

_SCAN_BATCH = 500


def quarantine_email(w: WriteContext, cmd: em.QuarantineEmail) -> Recorded:
    fields = cmd.model_dump(include={
        "reason", "detail", "message_id", "uidvalidity", "uid", "size", "raw_ref", "header_ref",
    })
    return _on_mailbox(w, cmd, cmd.account, cmd.folder,
                       lambda box, key: box.quarantine(key, w.naming.event_id(key), **fields))


def note_uidvalidity_change(w: WriteContext, cmd: em.NoteUidValidityChange) -> Recorded:
    return _on_mailbox(
        w, cmd, cmd.account, cmd.folder,
        lambda box, key: box.note_uidvalidity_change(
            key, w.naming.event_id(key), cmd.old_uidvalidity, cmd.new_uidvalidity),
    )


def _on_mailbox(
    w: WriteContext, cmd: m.Command, account: str, folder: str,
    decide: Callable[[Mailbox, str], None],
) -> Recorded:
    """Load -> decide -> save on the mailbox's stream, once per source key."""
    key = source_key(cmd)
    if (done := w.keys.lookup(key)) is not None:
        return done
    app = w.store.app
    box_id = w.naming.mailbox(account, folder)

    def attempt(_: int) -> Recorded:
        try:
            box: Mailbox = app.repository.get(box_id)
        except AggregateNotFoundError:
            try:  # opened on its own: source-key rows belong to keyed events only
                app.save(Mailbox.open(box_id, account, folder))
            except IntegrityError:
                pass  # opened concurrently
            raise TryAgain(race=False) from None
        if box.has(key):  # stores without a source-key table dedup here
            return Recorded(customer_id=str(box_id), duplicate=True)
        decide(box, key)
        if not box.pending_events:
            return Recorded(customer_id=str(box_id))
        try:
            return w.store.save(box, key)  # type: ignore[arg-type]
        except IntegrityError as exc:
            if (done := w.keys.duplicate(key, exc)) is not None:
                return done
            raise TryAgain() from exc

    return retrying(attempt, gave_up=f"mailbox {account}/{folder} kept changing")


def quarantined(w: WriteContext) -> Iterator[tuple[Mailbox.MessageQuarantined, Mailbox]]:
    """Each quarantined message with its mailbox, oldest first (a scan of the log by
    topic: fine for a quarantine, which stays small). Lazy: the caller stops when it has
    enough."""
    app = w.store.app
    topic = get_topic(Mailbox.MessageQuarantined)
    boxes: dict[object, Mailbox] = {}
    start = 1
    while batch := app.recorder.select_notifications(start, _SCAN_BATCH, topics=[topic]):
        for note in batch:
            event: Mailbox.MessageQuarantined = app.mapper.to_domain_event(note)  # type: ignore[assignment]
            box = boxes.get(event.originator_id)
            if box is None:
                box = boxes[event.originator_id] = app.repository.get(event.originator_id)
            yield event, box
        start = batch[-1].id + 1
