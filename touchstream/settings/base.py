"""What every settings section shares: the error, the store URI helpers, the section base."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class SettingsError(ValueError):
    """Raised when a setting has a value Touchstream cannot use."""


def store_kind(uri: str) -> str:
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover", "kdb", "kdb+discover"):
        return "kurrentdb"
    raise SettingsError(
        f"unsupported store URI {uri!r}: use sqlite:///path, postgresql://… or esdb://…"
    )


def sqlite_path(uri: str) -> Path:
    """``sqlite:///relative/file.db`` or ``sqlite:////absolute/file.db``."""
    path = unquote(urlsplit(uri).path)
    path = path.removeprefix("/")
    if not path:
        raise SettingsError(f"sqlite URI without a file: {uri!r}")
    return Path(path)


CommaList = Annotated[tuple[str, ...], NoDecode]


def split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


class Section(BaseSettings):
    """One group of settings sharing a prefix; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)
    title: ClassVar[str] = ""

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # only the values ``from_env`` read from the mapping given

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Any:
        """The section from ``env`` alone (never ``os.environ`` unless that is ``env``)."""
        return cls(**_MappingSource(cls, env)())


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over an explicit mapping (tests pass a dict)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # As pydantic-settings reads os.environ: names folded to lower case, empties dropped.
        return {k if self.case_sensitive else k.lower(): v for k, v in self._env.items()
                if not (self.env_ignore_empty and v == "")}


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; SettingsError (a ValueError) when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"unknown time zone {name!r} (use an IANA name such as "
                            "Europe/London)") from exc
