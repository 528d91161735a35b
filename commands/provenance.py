"""Source keys and provenance: what every recorded event carries about its command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from commands import messages as m
from commands.naming import event_id
from domain.customer import Provenance, check_not_ahead


def source_key(cmd: m.Command) -> str:
    """The key ``cmd`` is recorded under: the client's, the source's id, or a fresh one."""
    key = cmd.source_key or cmd.default_source_key()
    if key is None:
        # No id from the source and no Idempotency-Key: nothing to dedup on.
        key = f"{cmd.kind}:anon:{uuid4()}"
    return f"{cmd.kind}|{key}" if not key.startswith(f"{cmd.kind}:") else key


def provenances(
    cmd: m.Command, key: str, channel: str, direction: str, clock: Callable[[], datetime],
    max_future_skew: timedelta | None = None,
    ids: Callable[[str, int], UUID] = event_id,
) -> Iterator[Provenance]:
    """The provenance of each event the command records, in order (ids from the key);
    a source time further ahead of the clock than ``max_future_skew`` is refused."""
    occurred = cmd.occurred_at or clock()
    if cmd.occurred_at is not None and max_future_skew is not None:
        check_not_ahead(occurred, clock(), max_future_skew)
    i = 0
    while True:
        yield Provenance(
            event_id=ids(key, i),
            occurred_at=occurred,
            channel=channel,
            direction=direction,
            actor=cmd.actor or "unknown",
            source_key=key,
            correlation_id=cmd.correlation_id or key,
            causation_id=cmd.causation_id or key,
        )
        i += 1
