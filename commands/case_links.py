"""Signed, expiring links to one case's status page (no customer accounts).

A link names the case, its customer and an expiry time, and carries an HMAC-SHA256 of
the three under the hub's forms secret (with its own purpose prefix, so a survey or an
unsubscribe signature never verifies here). It cannot be pointed at another case or
customer, nor stretched past its expiry. The pure functions here are what every channel
uses: the self-service pages check links, and anything that emails a customer (the
auto-acknowledgement, staff replies) makes them with ``status_link_for``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

PREFIX = "/help/cases/"
DEFAULT_TTL_S = 30 * 86_400  # a month: long enough for a case, short enough to go stale


class CaseLinkError(ValueError):
    """Raised when a status link was not signed by this hub (or was changed): HTTP 403."""


class CaseLinkExpiredError(CaseLinkError):
    """Raised when a genuine status link is past its expiry: HTTP 410."""


@dataclass(frozen=True)
class CaseLink:
    case_id: UUID
    customer_id: UUID
    expires: int  # seconds since the epoch


def _mac(secret: str, case_id: UUID, customer_id: UUID, expires: int) -> str:
    payload = f"case-status|{case_id}|{customer_id}|{expires}".encode()
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def status_token(secret: str, case_id: UUID, customer_id: UUID, now: datetime,
                 ttl_s: int = DEFAULT_TTL_S) -> str:
    """The token of a link valid for ``ttl_s`` seconds from ``now``."""
    expires = int(now.timestamp()) + ttl_s
    return f"{case_id}.{customer_id}.{expires}.{_mac(secret, case_id, customer_id, expires)}"


def status_link_for(secret: str, case_id: UUID, customer_id: UUID, now: datetime, *,
                    base_url: str = "", ttl_s: int = DEFAULT_TTL_S) -> str:
    """The status page's URL for a customer's case (``base_url`` + ``/help/cases/<token>``),
    to put in an email to that customer."""
    return f"{base_url.rstrip('/')}{PREFIX}{status_token(secret, case_id, customer_id, now, ttl_s)}"


def check_status_token(secret: str, token: str, now: datetime) -> CaseLink:
    """What a token names; ``CaseLinkError`` when forged or altered, ``CaseLinkExpiredError``
    when genuine but expired (checked after the signature: an attacker learns nothing)."""
    parts = token.split(".")
    if len(parts) != 4:
        raise CaseLinkError("this link is not valid")
    try:
        link = CaseLink(UUID(parts[0]), UUID(parts[1]), int(parts[2]))
    except ValueError as exc:
        raise CaseLinkError("this link is not valid") from exc
    if str(link.case_id) != parts[0] or str(link.customer_id) != parts[1] or \
            str(link.expires) != parts[2]:
        raise CaseLinkError("this link is not valid")  # one spelling per link
    expected = _mac(secret, link.case_id, link.customer_id, link.expires)
    if not hmac.compare_digest(expected.encode(), parts[3].encode()):
        raise CaseLinkError("this link is not valid")
    if now.timestamp() >= link.expires:
        raise CaseLinkExpiredError("this link has expired; ask us for a new one")
    return link
