"""Fleet settings (``TOUCHSTREAM_FLEET_*``): leases shared through the state store."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from touchstream.settings.base import Section


class FleetSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_FLEET_")
    title = "Fleet (leases)"

    lease: float = Field(15.0, ge=1.0, le=600.0, description=(
        "Seconds a lease lasts (IMAP follower per account and folder, projection worker per "
        "read model, sender per queued email); renewed every third of it. A dead host's "
        "work is taken over within this plus one renewal (20 s by default)."))
    node: str | None = Field(None, description=(
        "This host's name in the leases (default: the host name); a lease held by a process "
        "of this node that no longer runs is taken over at once. Give each host its own."))
