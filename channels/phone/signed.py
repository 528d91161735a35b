"""The body of a webhook signed with the timestamped HMAC (CTI events, fax providers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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
