"""Settings of the phone, fax and web-form adapters, read from the environment when asked.

Kept apart from ``touchstream.settings`` so the channels' knobs do not crowd
the core settings; every function takes the environment explicitly (tests pass
a dict) and builds the adapters' own config dataclasses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels.phone.config import CtiConfig, FaxConfig, TwilioConfig
from touchstream.settings import SettingsError


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "y", "yes", "true", "on")


def twilio(env: Mapping[str, str] | None = None) -> TwilioConfig:
    e = _env(env)
    base = e.get("TOUCHSTREAM_PUBLIC_BASE_URL", "").strip()
    if base and not base.startswith(("https://", "http://")):
        raise SettingsError("TOUCHSTREAM_PUBLIC_BASE_URL must start with https:// or http://")
    return TwilioConfig(auth_token=e.get("TOUCHSTREAM_TWILIO_AUTH_TOKEN", ""),
                        public_base_url=base)


def cti(env: Mapping[str, str] | None = None) -> CtiConfig:
    e = _env(env)
    return CtiConfig(secret=e.get("TOUCHSTREAM_CTI_SECRET", ""),
                     window_s=float(_int(e, "TOUCHSTREAM_CTI_WINDOW_S", 300)))


def fax(env: Mapping[str, str] | None = None) -> FaxConfig:
    e = _env(env)
    hosts = frozenset(h.strip().lower() for h in e.get("TOUCHSTREAM_FAX_MEDIA_HOSTS", "").split(",")
                      if h.strip())
    return FaxConfig(
        secret=e.get("TOUCHSTREAM_FAX_SECRET", ""),
        allowed_hosts=hosts,
        max_document_bytes=_int(e, "TOUCHSTREAM_FAX_MAX_BYTES", 20 * 1024 * 1024),
        allow_private_addresses=_flag(e, "TOUCHSTREAM_FAX_ALLOW_PRIVATE_ADDRESSES"),
    )


def cdr_timezone(env: Mapping[str, str] | None = None, override: str | None = None) -> ZoneInfo:
    name = override or _env(env).get("TOUCHSTREAM_CDR_TIMEZONE") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"unknown time zone {name!r} (use an IANA name such as "
                            "Europe/London)") from exc


def call_directory_path(data_dir: Path) -> Path:
    return data_dir / "phone" / "calls.db"
