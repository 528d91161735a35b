"""The shape of every customer command: load -> decide -> save, retried on a lost race.

``on_customer`` loads the customer (a cached copy first: if another writer moved
the stream on, the save fails on the expected version and the retry loads
fresh), follows merges, asks the source key's guard whether the command was
recorded already, lets ``decide`` trigger the events, and saves them with
their source key. A decision refused on the cached copy is taken again on the
stored state before the refusal stands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands import messages as m
from commands.context import WriteContext
from commands.errors import ConflictError, CustomerNotFoundError
from commands.ports import Recorded
from commands.provenance import provenances
from commands.retry import TryAgain, retrying
from commands.store import MAX_MERGE_HOPS
from domain.customer import Customer, Provenance
from domain.errors import CustomerMergedError, DomainError

Decide = Callable[[Customer, Iterator[Provenance]], None]


class _Target:
    """Which customer the command is on, and whether the next load must skip the cache."""

    def __init__(self, customer_id: UUID) -> None:
        self.customer_id = customer_id
        self.fresh = False
        self.hops = 0

    def hop(self, merged_into: object) -> None:
        self.hops += 1
        if self.hops > MAX_MERGE_HOPS:
            raise ConflictError(f"merge chain too long from {self.customer_id}")
        self.customer_id = UUID(str(merged_into))


def on_customer(
    w: WriteContext,
    customer_id: UUID,
    key: str,
    decide: Decide,
    cmd: m.Command,
    channel: str = "system",
    direction: str = "internal",
    *,
    follow_merge: bool = True,
    looked_up: bool = False,
) -> Recorded:
    """Record what ``decide`` triggers on the customer under ``key``, once."""
    # ``looked_up``: the caller just checked the key (saves a second query per command).
    partner = cmd.partner_scope
    # For a partner, the customer is checked before any earlier result under the key is
    # shown: a key of another partner's customer must not reveal it.
    if not looked_up and partner is None and (done := w.keys.lookup(key)) is not None:
        return done
    guard = w.keys.guard(key)
    target = _Target(customer_id)

    def attempt(_: int) -> Recorded:
        load = w.store.load if target.fresh else w.store.load_cached
        customer = load(target.customer_id)
        if follow_merge and not guard.pinned and customer.merged_into is not None:
            target.hop(customer.merged_into)
            raise TryAgain(race=False)
        if partner is not None and customer.partner_id != partner:
            raise CustomerNotFoundError(f"no customer {target.customer_id}")
        found = guard.check(customer)
        if isinstance(found, UUID):  # the key was reserved on another customer
            target.customer_id = found
            raise TryAgain(race=False)
        if found is not None:
            return found
        try:
            decide(customer, provenances(cmd, key, channel, direction, w.clock,
                                         w.max_future_skew, w.naming.event_id))
        except CustomerMergedError as exc:
            if not target.fresh:
                target.fresh = True  # decide again on the stored state, not the cached one
                raise TryAgain(race=False) from exc
            if not follow_merge or guard.pinned:
                raise
            target.hop(exc.merged_into)
            raise TryAgain(race=False) from exc
        except DomainError as exc:
            if not target.fresh:
                target.fresh = True
                raise TryAgain(race=False) from exc
            # A retry of something recorded before the rule started to refuse it.
            if (done := w.keys.lookup(key)) is not None:
                return done
            raise
        if not customer.pending_events:
            return Recorded(customer_id=str(target.customer_id))
        try:
            return w.store.save(customer, key)
        except IntegrityError as exc:
            if (done := w.keys.duplicate(key, exc)) is not None:
                return done
            target.fresh = True
            raise TryAgain() from exc

    return retrying(attempt, gave_up=f"customer {customer_id} kept changing")
