"""Webhook signatures: Twilio's ``X-Twilio-Signature`` and a timestamped HMAC-SHA256.

Both compare in constant time. Twilio's scheme has no timestamp (replays are
absorbed by deduplication); the generic HMAC scheme signs
``<timestamp>.<raw body>`` and refuses timestamps outside a window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


class SignatureError(Exception):
    """Raised when a webhook's signature is missing, malformed, stale or wrong."""


def public_url(base_url: str, path: str, query: str) -> str:
    """The URL the provider called, rebuilt from the configured public base URL.

    Behind a proxy the request's own host and scheme are the proxy's; the
    provider signed the public one.
    """
    url = base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def _port_variants(url: str) -> list[str]:
    """The URL with and without its default port (providers sign either)."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    variants = [url]
    if parts.port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}")))
    return variants


def twilio_signature(token: str, url: str, params: Mapping[str, Sequence[str]]) -> str:
    """base64(HMAC-SHA1(token, url + name+value for each parameter, sorted))."""
    payload = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            payload += name + value
    mac = hmac.new(token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def verify_twilio(
    token: str,
    url: str,
    params: Mapping[str, Sequence[str]],
    signature: str | None,
    *,
    body: bytes | None = None,
) -> None:
    """Check a Twilio request; ``body`` is given for JSON requests (signed via ``bodySHA256``).

    Raises ``SignatureError`` when the request is not from the holder of ``token``.
    """
    if not token:
        raise SignatureError("no Twilio auth token configured")
    if not signature:
        raise SignatureError("X-Twilio-Signature header missing")
    if body is not None:
        claimed = parse_qs(urlsplit(url).query).get("bodySHA256", [""])[0]
        if not claimed:
            raise SignatureError("JSON webhook without bodySHA256 in its URL")
        actual = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(actual.encode(), claimed.lower().encode()):
            raise SignatureError("body does not match bodySHA256")
        params = {}
    matched = False
    for candidate in _port_variants(url):
        expected = twilio_signature(token, candidate, params)
        # Evaluate every variant: no early exit that would tell which one matched.
        matched |= hmac.compare_digest(expected.encode(), signature.encode())
    if not matched:
        raise SignatureError("X-Twilio-Signature does not match")


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def verify_hmac(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    window_s: float,
) -> None:
    """Check a timestamped HMAC-SHA256 (``sha256=<hex>`` or bare hex).

    Raises ``SignatureError`` when missing, stale (outside ``window_s`` either
    way) or wrong.
    """
    if not secret:
        raise SignatureError("no shared secret configured")
    if not timestamp or not signature:
        raise SignatureError("signature or timestamp header missing")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise SignatureError("timestamp is not an integer of seconds") from exc
    if abs(now - sent) > window_s:
        raise SignatureError(f"timestamp outside the {int(window_s)} s window")
    given = signature.removeprefix("sha256=").strip().lower()
    expected = hmac_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError("signature does not match")
