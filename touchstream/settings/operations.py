"""Operations settings: logs, readiness, shutdown (``TOUCHSTREAM_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt
from pydantic_settings import SettingsConfigDict

from touchstream.settings.base import Section


class OperationsSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_")
    title = "Operations"

    log_format: Literal["auto", "json", "text"] = Field("auto", description=(
        "`json`: one JSON object per line (request, key and customer ids; never personal "
        "content); `text`: for a person; `auto`: text when stderr is a terminal, else JSON."))
    ready_max_lag: int = Field(10_000, ge=0, description=(
        "`GET /ready` answers 503 while a live read model is more than this many events "
        "behind the log (a host catching up stays out of the load balancer); 0: no bound."))
    shutdown_grace: PositiveInt = Field(10, description=(
        "Seconds `touchstream serve` waits, after SIGTERM, for requests in flight (open "
        "screen-pop streams are closed then) before stopping the followers and group commits."))
