"""Service settings: the SLA policies, business calendars and queue calendars."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import SettingsConfigDict

from domain.sla import DEFAULT_CONFIG, SlaConfig, SlaConfigError, config_from_mapping
from touchstream.settings.base import Section


def read_sla_file(path: Path) -> SlaConfig:
    """An SLA settings file (TOML in the shape of ``domain.sla.DEFAULT_CONFIG``; missing
    parts take the defaults); ``SlaConfigError`` naming the file when it is unusable."""
    try:
        return config_from_mapping(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError, SlaConfigError) as exc:
        raise SlaConfigError(f"SLA settings {str(path)!r}: {exc}") from exc


class ServiceSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_SERVICE_")
    title = "Service (SLA)"

    sla_file: Path | None = Field(None, description=(
        "TOML file of SLA policies (targets per priority, warning share), business calendars "
        "(time zone, hours, holiday country/subdivision, closures) and queue calendars; "
        "default: `standard` policy, Berlin office hours, a 24/7 `urgent` queue."))

    _sla: SlaConfig | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _read_sla(self) -> ServiceSettings:
        try:
            self._sla = read_sla_file(self.sla_file) if self.sla_file is not None \
                else config_from_mapping(DEFAULT_CONFIG)
        except SlaConfigError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @property
    def sla(self) -> SlaConfig:
        assert self._sla is not None
        return self._sla
