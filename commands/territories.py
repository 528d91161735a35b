"""Territory commands: reassign a sales territory, and move its open opportunities.

``ReassignTerritory`` records ``Territory.Reassigned`` on the territory's own
record (once per source key; the same owner again records nothing). The
territory policy (``touchstream.territory_moves``) then sends one
``MoveTerritoryOpportunity`` per open opportunity in the territory, keyed by the
move and the opportunity, so a second pass or a crash in between moves each
opportunity once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from commands import messages as m
from commands.ports import Recorded
from commands.records import RecordProvenance, on_record
from commands.work import policy_of
from domain import territories as tr
from domain.customer import Customer, Provenance

Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@/-]+$")]


class ReassignTerritory(m.Command):
    """Give a territory (named in the work settings) to another owner; its open
    opportunities follow (the territory policy moves them, one event pair each)."""

    kind: Literal["reassign-territory"] = "reassign-territory"
    territory: Code
    to_owner: Code


class MoveTerritoryOpportunity(m.Command):
    """Move one open opportunity to its territory's new owner (the policy sends it)."""

    kind: Literal["move-territory-opportunity"] = "move-territory-opportunity"
    customer_id: UUID
    opportunity_id: UUID
    territory: Code
    move_id: UUID = Field(description="The reassignment's event id.")
    to_owner: Code

    def default_source_key(self) -> str:
        return f"move-territory-opportunity:{self.move_id}:{self.opportunity_id}"


def defined(w: Any, name: str) -> tr.TerritoryDef:
    """The configured territory called ``name`` (case-insensitive)."""
    for t in policy_of(w).territories:
        if t.name.lower() == name.lower():
            return t
    raise tr.TerritoryUnknownError(f"no territory {name!r} in the work settings")


def reassign_territory(w: Any, cmd: ReassignTerritory) -> Recorded:
    found = defined(w, cmd.territory)
    rid = tr.territory_id(found.name)

    def decide(record: Any, provs: Iterator[RecordProvenance]) -> tr.Territory:
        if record is None:
            record = tr.Territory._create(tr.Territory.Defined, id=rid, name=found.name,
                                          **next(provs).fields())
        current = record.owner or found.owner
        if current != cmd.to_owner:
            prov = next(provs)
            record.trigger_event(tr.Territory.Reassigned, owner=cmd.to_owner,
                                 previous_owner=current, move_id=str(prov.event_id),
                                 **prov.fields())
        return record  # type: ignore[no-any-return]

    return on_record(w.context, "territory", rid, cmd, decide)


def move_opportunity(w: Any, cmd: MoveTerritoryOpportunity) -> Recorded:
    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        tr.move_opportunity(customer, provs, opportunity_id=str(cmd.opportunity_id),
                            territory=cmd.territory, move_id=str(cmd.move_id),
                            to_owner=cmd.to_owner)

    return w.record_on(cmd, cmd.customer_id, decide)  # type: ignore[no-any-return]


HANDLERS: dict[type[m.Command], Callable[[Any, Any], Recorded]] = {
    ReassignTerritory: reassign_territory,
    MoveTerritoryOpportunity: move_opportunity,
}
