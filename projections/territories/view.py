"""Reading the territories read model: each configured territory with its owner, open
opportunities and pipeline amount, and the opportunity moves a reassignment still owes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from domain.territories import territory_id, territory_of
from domain.work import TerritoryDef
from projections.engine import Names
from projections.events import iso
from projections.store import Db
from projections.territories.projection import TerritoriesProjection
from projections.views import LiveView

_OPEN = ("SELECT o.opportunity_id, o.customer_id, o.owner, o.amount, o.currency, "
         "a.country, a.postcode, o.opened_us FROM {opportunity} o JOIN {address} a "
         "ON a.customer_id = o.customer_id WHERE o.status = 'open' "
         "ORDER BY o.opportunity_id")


class TerritoriesView(LiveView):
    projection = TerritoriesProjection()

    def _read(self, defs: Sequence[TerritoryDef]) -> tuple[
            dict[str, list[Any]], dict[str, tuple[str, str, int]], set[tuple[str, str]]]:
        def query(db: Db, t: Names) -> tuple[list[Any], list[Any], list[Any]]:
            return (db.all(_OPEN.format_map(t)),
                    db.all(f"SELECT territory, owner, move_id, moved_us FROM {t.reassigned}"),
                    db.all(f"SELECT move_id, opportunity_id FROM {t.moved}"))

        opps, moves, moved = self.run(query)
        by_territory: dict[str, list[Any]] = defaultdict(list)
        for row in opps:
            name = territory_of(defs, row[5], row[6])
            if name is not None:
                by_territory[name].append(row)
        ids = {str(territory_id(d.name)): d.name for d in defs}
        reassigned = {ids[r[0]]: (r[1], r[2], int(r[3])) for r in moves if r[0] in ids}
        return by_territory, reassigned, {(m[0], m[1]) for m in moved}

    def territories(self, defs: Sequence[TerritoryDef]) -> list[dict[str, Any]]:
        """Every configured territory: owner now, open opportunities, pipeline per currency."""
        by_territory, reassigned, _ = self._read(defs)
        out = []
        for d in defs:
            rows = by_territory.get(d.name, [])
            totals: dict[str, Decimal] = defaultdict(Decimal)
            for row in rows:
                totals[row[4]] += Decimal(row[3])
            owner, move_id, moved_us = reassigned.get(d.name, (d.owner, None, None))
            out.append({"territory": d.name, "prefixes": list(d.prefixes), "owner": owner,
                        "configured_owner": d.owner, "last_move_id": move_id,
                        "moved_at": iso(moved_us), "open_opportunities": len(rows),
                        "pipeline": {c: f"{v:.2f}" for c, v in sorted(totals.items())},
                        "owners": sorted({row[2] for row in rows})})
        return out

    def pending_moves(self, defs: Sequence[TerritoryDef]) -> list[dict[str, str]]:
        """Open opportunities of a reassigned territory, opened before its latest move, that
        the move has not moved yet and someone other than the new owner holds (one opened
        later keeps the owner it was given)."""
        by_territory, reassigned, moved = self._read(defs)
        out = []
        for name, (owner, move_id, moved_us) in sorted(reassigned.items()):
            for row in by_territory.get(name, []):
                if row[2] != owner and (move_id, row[0]) not in moved and row[7] <= moved_us:
                    out.append({"customer_id": row[1], "opportunity_id": row[0],
                                "territory": name, "move_id": str(move_id), "to_owner": owner})
        return out
