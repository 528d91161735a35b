"""Sales territories: postcode/country prefixes with an owner, and their reassignment.

Territories are configured (the work file's ``[[territories]]``: name,
prefixes such as ``"DE"`` or ``"DE-10"``, owner). Who owns a territory now is
the configured owner unless a ``Territory`` record (its own stream, id derived
from the name) says it was reassigned: ``Territory.Reassigned`` names the new
owner and a ``move_id``. The open opportunities of customers in that territory
then change owner, each on its customer's stream, as the sales area's
``OpportunityChanged`` (so the pipeline and the commissions follow the owner as
always) preceded by ``OpportunityTerritoryMoved`` naming the territory and the
move. An opportunity is moved once per move (its key derives from both), and
only while it is open and still owned by someone other than the new owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain import sales
from domain.customer import Customer, Provenance
from domain.errors import DomainError
from domain.records import Record
from domain.work import TerritoryDef, in_territory

_NAMESPACE = uuid5(NAMESPACE_URL, "touchstream:territory")


class TerritoryUnknownError(DomainError):
    """Raised when a command names a territory the settings do not define."""


def territory_id(name: str) -> UUID:
    return uuid5(_NAMESPACE, name.strip().lower())


def territory_of(territories: Sequence[TerritoryDef], country: str | None,
                 postcode: str | None) -> str | None:
    """The first configured territory containing the address, by name (None: none)."""
    for t in territories:
        if in_territory(t.prefixes, country, postcode):
            return t.name
    return None


class Territory(Record):
    """A territory's reassignments (its configured owner is the starting point)."""

    class Defined(Record.Created):
        name: str

    class Reassigned(Record.Event):
        owner: str
        previous_owner: str
        move_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.owner = self.owner
            aggregate.moves.append(self.move_id)

    def __init__(self, name: str, **_: Any) -> None:
        self.name = name
        self.owner: str | None = None
        self.moves: list[str] = []


class OpportunityTerritoryMoved(Customer.BusinessEvent):
    """An open opportunity changes owner because its territory was reassigned (the
    ``OpportunityChanged`` recorded right after carries the new owner)."""

    opportunity_id: str
    territory: str
    move_id: str
    from_owner: str
    to_owner: str

    def apply(self, aggregate: Any) -> None:
        aggregate.area("territories").setdefault("moved", {})[
            f"{self.move_id}:{self.opportunity_id}"] = True


EVENTS: tuple[type[Customer.BusinessEvent], ...] = (OpportunityTerritoryMoved,)


def move_opportunity(customer: Customer, provs: Any, *, opportunity_id: str, territory: str,
                     move_id: str, to_owner: str) -> None:
    """Move one opportunity to the territory's new owner, once per move; a closed one, or
    one the new owner has already, is left as it is."""
    if f"{move_id}:{opportunity_id}" in customer.area("territories").get("moved", {}):
        return
    opp = sales.opportunities(customer).get(opportunity_id)
    if opp is None:
        raise sales.OpportunityUnknownError(f"customer has no opportunity {opportunity_id}")
    if opp["status"] != "open" or opp["owner"] == to_owner:
        return
    prov: Provenance = next(provs)
    customer.record_business(OpportunityTerritoryMoved, prov, opportunity_id=opportunity_id,
                             territory=territory, move_id=move_id, from_owner=opp["owner"],
                             to_owner=to_owner)
    sales.change_opportunity(customer, next(provs), opportunity_id=opportunity_id,
                             owner=to_owner)
