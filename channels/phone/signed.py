"""The body of a webhook signed with the timestamped HMAC (CTI events, fax providers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastapi import HTTPException, Request

from channels.bodies import media_type, read_capped
from channels.phone.signatures import SignatureError, verify_hmac

TIMESTAMP_HEADER = "X-Touchstream-Timestamp"
SIGNATURE_HEADER = "X-Touchstream-Signature"


class SignedWebhookConfig(Protocol):
    secret: str
    window_s: float
    max_body_bytes: int
    clock: Callable[[], float]


async def signed_json_body(request: Request, config: SignedWebhookConfig, what: str) -> bytes:
    """The raw JSON body once its size, signature and timestamp are accepted (413/403/415)."""
    body = await read_capped(request, config.max_body_bytes)
    try:
        verify_hmac(config.secret, request.headers.get(TIMESTAMP_HEADER),
                    request.headers.get(SIGNATURE_HEADER), body,
                    now=config.clock(), window_s=config.window_s)
    except SignatureError as exc:
        raise HTTPException(403, f"signature rejected: {exc}") from exc
    if media_type(request) != "application/json":
        raise HTTPException(415, f"{what} are JSON (Content-Type: application/json)")
    return body


#: the statuses a signed webhook answers besides 200, for the OpenAPI document
#: (bodies in the app's one error shape).
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body"},
    403: {"description": "Signature missing, invalid or outside the time window"},
    404: {"description": "The call's customer is unknown"},
    415: {"description": "Unsupported Content-Type"},
    422: {"description": "Invalid fields (or a media URL not allowed / not fetched)"},
    502: {"description": "The provider's media was not available yet; retry"},
    503: {"description": "Not recordable yet (unknown call, busy store); see Retry-After"},
}
