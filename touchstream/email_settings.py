"""Email channel settings (``TOUCHSTREAM_IMAP_*``, ``TOUCHSTREAM_SMTP_*``, ``TOUCHSTREAM_EMAIL_*``).

Read from the environment when asked, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from channels.email.config import (
    FAX_NUMBER_FORMATS,
    SECURITY_MODES,
    ImapConfig,
    InboundRules,
    SmtpConfig,
)
from touchstream.settings import SettingsError

MAX_POLL_S = 29 * 60


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


def _security(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).lower()
    if value not in SECURITY_MODES:
        raise SettingsError(f"{name} must be one of {', '.join(SECURITY_MODES)}")
    return value


def inbound_rules(env: Mapping[str, str] | None = None) -> InboundRules:
    env = os.environ if env is None else env
    staff = [s.lower() for s in _list(env, "TOUCHSTREAM_EMAIL_STAFF")]
    return InboundRules(
        staff_domains=frozenset(s.lstrip("@") for s in staff if "@" not in s.lstrip("@")),
        staff_addresses=frozenset(s for s in staff if "@" in s.lstrip("@")),
        fax_gateways=frozenset(s.lower().lstrip("@") for s in _list(env, "TOUCHSTREAM_EMAIL_FAX_GATEWAYS")),
        max_bytes=int(_number(env, "TOUCHSTREAM_EMAIL_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)),
        max_depth=int(_number(env, "TOUCHSTREAM_EMAIL_MAX_DEPTH", 50, minimum=1)),
        body_cap=int(_number(env, "TOUCHSTREAM_EMAIL_BODY_CAP", 32_000, minimum=100)),
        fax_number_format=_fax_number_format(env),
    )


def _fax_number_format(env: Mapping[str, str]) -> str:
    value = env.get("TOUCHSTREAM_EMAIL_FAX_NUMBERS", "national").strip().lower()
    if value not in FAX_NUMBER_FORMATS:
        raise SettingsError("TOUCHSTREAM_EMAIL_FAX_NUMBERS must be national or international "
                            "(country code first, without +)")
    return value


def imap_config(env: Mapping[str, str] | None = None) -> ImapConfig | None:
    """None when no ``TOUCHSTREAM_IMAP_HOST`` is configured."""
    env = os.environ if env is None else env
    host = env.get("TOUCHSTREAM_IMAP_HOST")
    if not host:
        return None
    security = _security(env, "TOUCHSTREAM_IMAP_SECURITY", "tls")
    after = env.get("TOUCHSTREAM_IMAP_AFTER", "none")
    if after not in ("none", "seen", "flag") and not (after.startswith("move:") and after[5:]):
        raise SettingsError("TOUCHSTREAM_IMAP_AFTER must be none, seen, flag or move:<folder>")
    user = env.get("TOUCHSTREAM_IMAP_USER")
    if not user:
        raise SettingsError("TOUCHSTREAM_IMAP_USER is required with TOUCHSTREAM_IMAP_HOST")
    return ImapConfig(
        host=host,
        port=int(_number(env, "TOUCHSTREAM_IMAP_PORT", 993 if security == "tls" else 143, minimum=1)),
        user=user,
        password=env.get("TOUCHSTREAM_IMAP_PASSWORD", ""),
        security=security,
        folders=_list(env, "TOUCHSTREAM_IMAP_FOLDERS") or ("INBOX",),
        account=env.get("TOUCHSTREAM_IMAP_ACCOUNT", ""),
        ca_file=env.get("TOUCHSTREAM_IMAP_CA_FILE") or None,
        timeout_s=_number(env, "TOUCHSTREAM_IMAP_TIMEOUT", 60, minimum=1),
        poll_s=min(_number(env, "TOUCHSTREAM_IMAP_POLL_SECONDS", 60, minimum=0.1), MAX_POLL_S),
        batch=int(_number(env, "TOUCHSTREAM_IMAP_BATCH", 100, minimum=1)),
        after=after,
        backoff_initial_s=_number(env, "TOUCHSTREAM_IMAP_BACKOFF_SECONDS", 1, minimum=0.05),
        backoff_max_s=_number(env, "TOUCHSTREAM_IMAP_BACKOFF_MAX_SECONDS", 300, minimum=0.05),
    )


def smtp_config(env: Mapping[str, str] | None = None) -> SmtpConfig | None:
    """None when no ``TOUCHSTREAM_SMTP_HOST`` is configured."""
    env = os.environ if env is None else env
    host = env.get("TOUCHSTREAM_SMTP_HOST")
    if not host:
        return None
    security = _security(env, "TOUCHSTREAM_SMTP_SECURITY", "starttls")
    default_port = {"tls": 465, "starttls": 587, "plain": 25}[security]
    return SmtpConfig(
        host=host,
        port=int(_number(env, "TOUCHSTREAM_SMTP_PORT", default_port, minimum=1)),
        security=security,
        user=env.get("TOUCHSTREAM_SMTP_USER") or None,
        password=env.get("TOUCHSTREAM_SMTP_PASSWORD") or None,
        ca_file=env.get("TOUCHSTREAM_SMTP_CA_FILE") or None,
        timeout_s=_number(env, "TOUCHSTREAM_SMTP_TIMEOUT", 60, minimum=1),
        max_attempts=int(_number(env, "TOUCHSTREAM_SMTP_MAX_ATTEMPTS", 8, minimum=1)),
        retry_base_s=_number(env, "TOUCHSTREAM_SMTP_RETRY_SECONDS", 60, minimum=0),
        retry_max_s=_number(env, "TOUCHSTREAM_SMTP_RETRY_MAX_SECONDS", 3600, minimum=0),
        poll_s=_number(env, "TOUCHSTREAM_SMTP_POLL_SECONDS", 5, minimum=0.05),
    )
