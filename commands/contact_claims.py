"""Contact-point claims: one stream per normalised contact point names its owner.

The store's optimistic concurrency on the claim stream means two customers can
never both own one email address or number. On stores that commit several
streams at once the claims are saved with the registration that takes them
(``taking``); elsewhere (EventStoreDB) they are saved first (``claim_all``), and
a claim whose customer never appeared (a kill in between) is repaired by the
next touchpoint from that contact (see ``commands.touchpoints.repair_owner``) or,
once stale, taken over by the next claimant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent

from commands.naming import StreamNaming
from commands.ports import StreamReader
from commands.retry import TryAgain, retrying
from commands.store import CustomerStore
from domain.claims import ContactPointClaim
from domain.errors import ContactPointTakenError, DomainError

CLAIM_STALE_AFTER_S = 60.0


class ContactClaims:
    """Reads and changes contact-point claims."""

    FOLD_MEMO = 20_000  # claim folds kept (dropped whole when full)

    def __init__(
        self, app: Application, naming: StreamNaming, store: CustomerStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.app = app
        self.naming = naming
        self.store = store
        self.clock = clock
        # claim stream → (last version, last event's bytes, owner): see ``owners``
        self._folds: dict[UUID | str, tuple[int, bytes, str | None]] = {}

    def get(self, ckey: str) -> ContactPointClaim | None:
        try:
            return self.app.repository.get(self.naming.claim(ckey))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def owner(self, ckey: str) -> str | None:
        claim = self.get(ckey)
        return claim.owner if claim is not None else None

    def owners(self, ckeys: Iterable[str]) -> dict[str, str | None]:
        """``owner`` of many contact points at once (None: unclaimed), for a batch.

        Where the recorder reads many streams in one statement (the SQL stores) every
        claim is read in that one query, so all answers are as of one moment, each the
        one ``owner`` would have given then: the same events, decoded by the same mapper
        and folded from the first (snapshots only ever shorten that fold). Elsewhere (a
        recorder without ``select_streams``) one load each.

        Every call reads the streams: merges and releases in other processes change
        owners at any time. Only the fold is remembered, per stream and keyed by its
        last event (version and bytes): a stream is append-only, so the same last event
        means the same events and the same owner; any new event folds it again."""
        wanted = list(dict.fromkeys(ckeys))
        reader = self.app.recorder
        if not isinstance(reader, StreamReader):
            return {ckey: self.owner(ckey) for ckey in wanted}
        ids = [self.naming.claim(ckey) for ckey in wanted]
        streams = reader.select_streams(ids) if ids else {}
        out: dict[str, str | None] = {}
        for ckey, claim_id in zip(wanted, ids, strict=True):
            stored = streams.get(claim_id)
            out[ckey] = self._folded(claim_id, stored) if stored else None
        return out

    def _folded(self, claim_id: UUID | str, stored: list[StoredEvent]) -> str | None:
        """The owner after ``stored`` (a claim stream's events, oldest first)."""
        last = stored[-1]
        memo = self._folds.get(claim_id)
        if memo is not None and memo[0] == last.originator_version and memo[1] == last.state:
            return memo[2]
        decode = self.app.mapper.to_domain_event
        claim: Any = None
        # The library's project_aggregate without its per-event runtime Protocol check
        # (an isinstance walking the protocol: ~2% of an email ingest's samples, py-spy).
        for event in stored:
            claim = decode(event).mutate(claim)
        owner = claim.owner if isinstance(claim, ContactPointClaim) else None
        if len(self._folds) >= self.FOLD_MEMO:
            self._folds = {}
        self._folds[claim_id] = (last.originator_version, last.state, owner)
        return owner

    def taking(self, ckeys: list[str], customer_id: str) -> list[ContactPointClaim]:
        """The claims ``customer_id`` must change to own every contact point, changed but
        not saved (to save with the registration); ``ContactPointTakenError`` if one is owned."""
        changed = []
        for ckey in ckeys:
            claim = self.get(ckey) or self._open(ckey)
            self._take(claim, customer_id, ckey)
            if claim.pending_events:
                changed.append(claim)
        return changed

    def claim(self, ckey: str, customer_id: str) -> None:
        self._change(ckey, lambda claim: self._take(claim, customer_id, ckey), create=True)

    def claim_all(self, ckeys: list[str], customer_id: str) -> None:
        """Claim every contact point or none: a refused one releases those just taken,
        so a corrected retry is not blocked by the failed attempt's claims."""
        taken: list[str] = []
        try:
            for ckey in ckeys:
                if self.owner(ckey) != customer_id:
                    self.claim(ckey, customer_id)
                    taken.append(ckey)
        except DomainError:
            for ckey in taken:
                self.release(ckey, customer_id)
            raise

    def release(self, ckey: str, customer_id: str) -> None:
        self._change(ckey, lambda claim: claim.release(customer_id), create=False)

    def is_stale(self, claim: ContactPointClaim) -> bool:
        """A claim whose customer was never created (a crash mid-registration), for a while."""
        if claim.owner is None or self.store.exists(UUID(claim.owner)):
            return False
        return (self.clock() - claim.modified_on).total_seconds() > CLAIM_STALE_AFTER_S

    def _open(self, ckey: str) -> ContactPointClaim:
        # The claim keeps the contact point only as a keyed digest: it outlives an
        # erasure of its owner, and the stream id is keyed the same way.
        return ContactPointClaim.open(self.naming.claim(ckey), self.naming.digest(ckey))

    def _take(self, claim: ContactPointClaim, customer_id: str, ckey: str) -> None:
        if claim.owner not in (None, customer_id) and self.is_stale(claim):
            claim.release(claim.owner)  # type: ignore[arg-type]
        try:
            claim.claim(customer_id)
        except ContactPointTakenError as exc:
            raise ContactPointTakenError(ckey, exc.owner) from None  # name it in clear

    def _change(
        self, ckey: str, change: Callable[[ContactPointClaim], None], *, create: bool
    ) -> None:
        """Apply ``change`` to a contact point's claim, retrying on concurrent changes."""

        def attempt(_: int) -> None:
            claim = self.get(ckey)
            if claim is None:
                if not create:
                    return
                claim = self._open(ckey)
            change(claim)
            if claim.pending_events:
                try:
                    self.app.save(claim)
                except IntegrityError as exc:
                    raise TryAgain() from exc

        retrying(attempt, gave_up=f"contact point {ckey} kept changing")
