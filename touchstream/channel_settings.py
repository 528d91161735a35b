"""Settings of the phone, fax and web-form adapters, read from the environment when asked.

Kept apart from ``touchstream.settings`` so the channels' knobs do not crowd
the core settings; every function takes the environment explicitly (tests pass
a dict) and builds the adapters' own config dataclasses.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels.phone.config import CtiConfig, FaxConfig, TwilioConfig
from channels.web.config import FormConfigError, FormsConfig, forms_from_json
from touchstream.settings import Settings, SettingsError, positive_int


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


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
                     window_s=float(positive_int(e, "TOUCHSTREAM_CTI_WINDOW_S", 300)))


def fax(env: Mapping[str, str] | None = None) -> FaxConfig:
    e = _env(env)
    hosts = frozenset(h.strip().lower() for h in e.get("TOUCHSTREAM_FAX_MEDIA_HOSTS", "").split(",")
                      if h.strip())
    return FaxConfig(
        secret=e.get("TOUCHSTREAM_FAX_SECRET", ""),
        allowed_hosts=hosts,
        max_document_bytes=positive_int(e, "TOUCHSTREAM_FAX_MAX_BYTES", 20 * 1024 * 1024),
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


def forms_secret(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """``TOUCHSTREAM_FORMS_SECRET``, else one generated once and kept in the data dir."""
    configured = _env(env).get("TOUCHSTREAM_FORMS_SECRET", "")
    if configured:
        return configured
    path = settings.data_dir / "forms.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def forms(settings: Settings, env: Mapping[str, str] | None = None) -> FormsConfig:
    e = _env(env)
    extra: dict[str, object] = {}
    if file := e.get("TOUCHSTREAM_FORMS_FILE"):
        try:
            extra["forms"] = forms_from_json(json.loads(Path(file).read_text()))
        except (OSError, ValueError) as exc:
            raise SettingsError(f"TOUCHSTREAM_FORMS_FILE {file!r}: {exc}") from exc
    try:
        return FormsConfig(
            secret=forms_secret(settings, e),
            default_region=settings.default_region,
            min_fill_s=float(e.get("TOUCHSTREAM_FORMS_MIN_FILL_S", "3")),
            rate_limit=positive_int(e, "TOUCHSTREAM_FORMS_RATE_LIMIT", 10),
            trust_forwarded_for=_flag(e, "TOUCHSTREAM_FORMS_TRUST_FORWARDED_FOR"),
            **extra,  # type: ignore[arg-type]
        )
    except (FormConfigError, ValueError) as exc:
        raise SettingsError(f"web forms: {exc}") from exc
