"""The read models by name."""

from __future__ import annotations

from collections.abc import Sequence

from projections.accounts.projection import AccountsProjection
from projections.auto_replies.projection import AutoRepliesProjection
from projections.callcentre.projection import CallCentreProjection
from projections.campaigns.projection import CampaignsProjection
from projections.channel_mix.projection import ChannelMixProjection
from projections.commissions.projection import CommissionsProjection
from projections.consent.projection import ConsentProjection
from projections.contracts.projection import ContractsProjection
from projections.directory.projection import DirectoryProjection
from projections.dispatch.projection import DispatchProjection
from projections.engine import Projection, UnknownProjectionError
from projections.event_index.projection import EventIndexProjection
from projections.knowledge.projection import KnowledgeProjection
from projections.lifecycle.projection import LifecycleProjection
from projections.orders.projection import OrdersProjection
from projections.outbox.projection import OutboxProjection
from projections.pipeline.projection import PipelineProjection
from projections.quality.projection import QualityProjection
from projections.response_times.projection import ResponseTimesProjection
from projections.satisfaction.projection import SatisfactionProjection
from projections.segments.projection import SegmentsProjection
from projections.service.projection import ServiceProjection
from projections.summary.projection import SummaryProjection
from projections.territories.projection import TerritoriesProjection
from projections.timeline.projection import TimelineProjection
from projections.value.projection import ValueProjection
from projections.work.projection import WorkProjection

PROJECTIONS: dict[str, type[Projection]] = {
    "timeline": TimelineProjection,
    "directory": DirectoryProjection,
    "summary": SummaryProjection,
    "outbox": OutboxProjection,
    "accounts": AccountsProjection,
    "quality": QualityProjection,
    "pipeline": PipelineProjection,
    "orders": OrdersProjection,
    "lifecycle": LifecycleProjection,
    "campaigns": CampaignsProjection,
    "segments": SegmentsProjection,
    "consent": ConsentProjection,
    "service": ServiceProjection,
    "dispatch": DispatchProjection,
    "callcentre": CallCentreProjection,
    "contracts": ContractsProjection,
    "channel_mix": ChannelMixProjection,
    "response_times": ResponseTimesProjection,
    "satisfaction": SatisfactionProjection,
    "value": ValueProjection,
    "event_index": EventIndexProjection,
    "work": WorkProjection,
    "commissions": CommissionsProjection,
    "knowledge": KnowledgeProjection,
    "auto_replies": AutoRepliesProjection,
    "territories": TerritoriesProjection,
}


def get(name: str, extra: Sequence[Projection] = ()) -> Projection:
    """The read model ``name``: built in, or one of ``extra`` (the analysts' live ones)."""
    for p in extra:
        if p.name == name:
            return p
    try:
        return PROJECTIONS[name]()
    except KeyError as exc:
        known = [*PROJECTIONS, *(p.name for p in extra)]
        raise UnknownProjectionError(
            f"unknown read model {name!r}; read models: {', '.join(known)}"
        ) from exc


def select(names: Sequence[str] | None, extra: Sequence[Projection] = ()) -> list[Projection]:
    """The named projections (all, built-in then ``extra``, when ``names`` is empty), each
    once, in a stable order."""
    wanted = list(dict.fromkeys(names or [*PROJECTIONS, *(p.name for p in extra)]))
    return [get(n, extra) for n in wanted]
