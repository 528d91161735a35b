"""Customer commands: register, profile, contact points, lifecycle, notes, partner, merges.

Each reads as load -> decide -> save through ``handling.on_customer``; a
registration saves its contact-point claims in the same transaction where the
store allows it (SQL), so a kill can never leave a claim without its customer.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands import messages as m
from commands.context import WriteContext
from commands.errors import ConflictError, CustomerNotFoundError
from commands.handling import Decide, on_customer
from commands.identity import contact_key, normalise
from commands.ports import Recorded
from commands.provenance import provenances, source_key
from commands.retry import TryAgain, retrying
from domain.customer import Customer

_HEAD_EVENTS = 60  # a registration's events all sit at the head of its stream


def register_customer(w: WriteContext, cmd: m.RegisterCustomer) -> Recorded:
    key = source_key(cmd)
    if (done := w.keys.lookup(key)) is not None:
        return done
    customer_id = cmd.customer_id or w.naming.uuid_for(f"customer:{key}")
    points = [(p.kind, normalise(p.kind, p.value, w.default_region), p.label)
              for p in cmd.contact_points]
    ckeys = [contact_key(kind, value) for kind, value, _ in points]
    if not w.keys.atomic:
        w.claims.claim_all(ckeys, str(customer_id))

    def attempt(_: int) -> Recorded:
        provs = provenances(cmd, key, "system", "internal", w.clock, w.max_future_skew,
                            w.naming.event_id)
        customer = Customer.register(
            w.naming.customer(customer_id), next(provs),
            name=cmd.name, company=cmd.company, lifecycle_stage=cmd.lifecycle_stage,
        )
        for kind, value, label in points:
            customer.add_contact_point(next(provs), kind, value, label)
        claims = w.claims.taking(ckeys, str(customer_id)) if w.keys.atomic else []
        try:
            return w.store.save(customer, key, along=claims)
        except IntegrityError as exc:
            if (done := w.keys.lookup(key) or _registered_by(w, customer_id, key)) is not None:
                return done
            if claims and not w.store.exists(customer_id):
                raise TryAgain() from exc  # a claim changed meanwhile: look at it again
            raise ConflictError(f"customer {customer_id} already exists") from exc

    return retrying(attempt, gave_up=f"contact points of {customer_id} kept changing")


def _registered_by(w: WriteContext, customer_id: UUID, key: str) -> Recorded | None:
    """The registration recorded under ``key`` (the reservation-free path's dedup)."""
    head = list(w.store.app.events.get(w.naming.customer(customer_id), limit=_HEAD_EVENTS))
    mine = [e for e in head if getattr(e, "source_key", None) == key]
    if not mine:
        return None
    return Recorded(
        customer_id=str(customer_id),
        event_ids=[str(e.event_id) for e in mine],  # type: ignore[attr-defined]
        versions=[e.originator_version for e in mine],
        positions=[None] * len(mine),
        duplicate=True,
    )


def _required(cmd: m.CustomerTarget) -> UUID:
    if cmd.customer_id is None:
        raise CustomerNotFoundError("customer_id is required for this command")
    return cmd.customer_id


def _change(w: WriteContext, cmd: m.CustomerTarget, decide: Decide) -> Recorded:
    return on_customer(w, _required(cmd), source_key(cmd), decide, cmd)


def change_profile(w: WriteContext, cmd: m.ChangeProfile) -> Recorded:
    return _change(w, cmd, lambda c, p: c.change_profile(next(p), dict(cmd.changes)))


def add_contact_point(w: WriteContext, cmd: m.AddContactPoint) -> Recorded:
    kind = cmd.contact.kind
    value = normalise(kind, cmd.contact.value, w.default_region)
    owner = w.store.resolve_merges(_required(cmd))
    w.claims.claim(contact_key(kind, value), str(owner))
    return _change(w, cmd, lambda c, p: c.add_contact_point(next(p), kind, value, cmd.contact.label))


def remove_contact_point(w: WriteContext, cmd: m.RemoveContactPoint) -> Recorded:
    kind = cmd.contact.kind
    value = normalise(kind, cmd.contact.value, w.default_region)
    result = _change(w, cmd, lambda c, p: c.remove_contact_point(next(p), kind, value, cmd.reason))
    w.claims.release(contact_key(kind, value), result.customer_id)
    return result


def change_lifecycle_stage(w: WriteContext, cmd: m.ChangeLifecycleStage) -> Recorded:
    return _change(w, cmd, lambda c, p: c.change_lifecycle_stage(next(p), cmd.to_stage, cmd.reason))


def add_note(w: WriteContext, cmd: m.AddNote) -> Recorded:
    return _change(w, cmd, lambda c, p: c.add_note(next(p), cmd.text, cmd.visibility))


def assign_partner(w: WriteContext, cmd: m.AssignPartner) -> Recorded:
    return _change(w, cmd, lambda c, p: c.assign_partner(next(p), cmd.partner_id))


def merge_customers(w: WriteContext, cmd: m.MergeCustomers) -> Recorded:
    """Merge ``source`` into ``target``: both as events, nothing rewritten."""
    if cmd.source_id == cmd.target_id:
        raise ConflictError("a customer cannot be merged into itself")
    target = w.store.load(cmd.target_id)
    if target.merged_into is not None:
        raise ConflictError(f"target {cmd.target_id} is itself merged into {target.merged_into}")
    key = source_key(cmd)
    if cmd.source_key is None:
        # The derived key names the pair; after an unmerge the same pair may merge
        # again, so each merge of the source after its n-th unmerge has its own key
        # (a retry of one merge still finds its own key: unmerges did not change).
        unmerges = w.store.load(cmd.source_id).unmerges
        key = f"{key}:after-unmerge-{unmerges}" if unmerges else key
    source_id = str(cmd.source_id)
    on_customer(w, cmd.target_id, key + "#absorb", lambda c, p: c.absorb(next(p), source_id),
                cmd, follow_merge=False)
    return on_customer(w, cmd.source_id, key,
                       lambda c, p: c.merge_into(next(p), str(cmd.target_id)),
                       cmd, follow_merge=False)


def unmerge_customer(w: WriteContext, cmd: m.UnmergeCustomer) -> Recorded:
    key = source_key(cmd)
    if (done := w.keys.lookup(key)) is not None:
        return done
    source = w.store.load(cmd.source_id)
    if source.merged_into is None:
        raise ConflictError(f"customer {cmd.source_id} is not merged")
    target_id = UUID(source.merged_into)
    on_customer(w, target_id, key + "#release",
                lambda c, p: c.release(next(p), str(cmd.source_id)), cmd, follow_merge=False)
    return on_customer(w, cmd.source_id, key, lambda c, p: c.unmerge(next(p)), cmd,
                       follow_merge=False)
