"""The read side in the API process: the projection runner and the read routes.

How ``touchstream serve`` uses it::

    deps = bootstrap()
    create_app(deps, routers=[read_routes], services=[ProjectionService(deps)])

``touchstream projections run`` runs the same runner as a separate process. The
read routes (and the screen-pop) record every read of a customer's data in the
read audit (``read_audit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands.identity import normalise_email, normalise_number
from projections import registry
from projections.analyst.installed import installed as analyst_installed
from touchstream.bootstrap import Dependencies
from touchstream.fleet.projections import LeasedProjections
from touchstream.fleet.wiring import lease_owner


def live_projections(deps: Dependencies, names: Sequence[str] | None = None) -> list[Any]:
    """The read models to keep: built-in ones and the analysts' live ones."""
    db = deps.read_store.connect()
    try:
        return registry.select(names, analyst_installed(db))
    finally:
        db.close()


def leased_projections(deps: Dependencies, names: Sequence[str] | None = None,
                       batch: int | None = None) -> LeasedProjections:
    """The read models this process runs: its share of them among every worker and
    server on the same read store (``touchstream.fleet.projections``)."""
    extra = {} if batch is None else {"batch": batch}
    return LeasedProjections(deps.read_store, deps.event_source, live_projections(deps, names),
                             deps.leases, lease_owner(deps.settings), deps.settings.fleet.lease,
                             **extra)


class ProjectionService:
    """Runs the projections in this process (``start``/``stop``, for the API's lifespan):
    those whose leases it holds, a fair share among the workers on the same read store."""

    def __init__(self, deps: Dependencies, names: Sequence[str] | None = None) -> None:
        self.deps = deps
        self.names = names
        self.runner: LeasedProjections | None = None

    def start(self) -> None:
        self.runner = leased_projections(self.deps, self.names)
        self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None


def read_audit(deps: Dependencies) -> Any:
    """The read API's ``ReadAudit``: ``touchstream.audit_routes`` over the process's access
    recorder on this read store."""
    from read_api.routes import ReadAudit
    from touchstream.audit_routes import access_recorded, arecord_read
    from touchstream.audit_wiring import access_recorder

    recorder = access_recorder(deps.settings)
    return ReadAudit(
        recorded=lambda principal: access_recorded(recorder, principal),
        record=lambda request, who, customer_id: arecord_read(recorder, request, who,
                                                              customer_id))


def read_routes(context: Any, *, audited: bool = True) -> Any:
    """A ``RouterFactory`` for ``create_app``: the read API over the read store.

    ``context`` is the app's ``AppContext`` (its ``deps`` and ``authorize``). Every
    served app records reads (``audited``); only ``bench timeline`` turns it off, to
    measure what the read audit costs.
    """
    from read_api.routes import read_routers

    deps: Dependencies = context.deps
    region = deps.settings.default_region
    return read_routers(
        deps.read_views,
        context.authorize,
        normalise_phone=lambda raw: normalise_number(raw, region),
        normalise_email=normalise_email,
        audit=read_audit(deps) if audited else None,
        log_head=lambda: int(deps.hub.recorder.max_notification_id() or 0),
        rfm_defaults=(deps.settings.sales.rfm_period_days, deps.settings.sales.rfm_currency),
        sla=deps.settings.service.sla,
        value_policy=deps.settings.value.policy(),
        work_policy=deps.settings.work.policy(),
    )
