"""The territory policy: after a territory is reassigned, move its open opportunities.

Run in the work policies' pass (one fleet lease). The territories read model is caught
up and asked which open opportunities of a reassigned territory its latest move has not
moved yet; one ``MoveTerritoryOpportunity`` is sent per opportunity, keyed by the move
and the opportunity, so a repeated pass moves nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from commands.errors import CommandError
from commands.territories import MoveTerritoryOpportunity
from commands.work import policy_of
from domain.errors import DomainError
from projections.territories.projection import TerritoriesProjection
from projections.territories.view import TerritoriesView
from touchstream.bootstrap import Dependencies

log = logging.getLogger("touchstream.territories")
ACTOR = "territory-policy"


class TerritoryMoves:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.projection = TerritoriesProjection()
        self.view = TerritoriesView(deps.read_store)

    def run_once(self, now: datetime) -> tuple[int, list[str]]:
        """(opportunities moved, refusals) of one pass."""
        defs = policy_of(self.deps.hub).territories
        if not defs:
            return 0, []
        self.deps.catch_up(self.projection)
        moved, refused = 0, []
        for move in self.view.pending_moves(defs):
            cmd = MoveTerritoryOpportunity(
                customer_id=UUID(move["customer_id"]),
                opportunity_id=UUID(move["opportunity_id"]), territory=move["territory"],
                move_id=UUID(move["move_id"]), to_owner=move["to_owner"], occurred_at=now,
                actor=ACTOR, causation_id=move["move_id"])
            try:
                recorded = self.deps.hub.execute(cmd)
            except (DomainError, CommandError) as exc:
                refused.append(f"{cmd.default_source_key()}: {exc}")
                log.warning("territory move refused: %s", exc)
                continue
            moved += 0 if recorded.duplicate or not recorded.event_ids else 1
        return moved, refused
