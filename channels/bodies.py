"""Request bodies with a hard size cap (Starlette has no total body limit of its own)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import HTTPException, Request


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, or HTTP 413 as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f"request body larger than {limit} bytes")
        except ValueError as exc:
            raise HTTPException(400, "Content-Length is not a number") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, every value kept (strict UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "form body is not UTF-8") from exc
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                         max_num_fields=1000)
    except ValueError as exc:
        raise HTTPException(400, f"malformed form body: {exc}") from exc


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
