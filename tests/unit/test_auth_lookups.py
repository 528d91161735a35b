"""``authorize`` over a networked key store: requests that miss the key cache at once share
one lookup (no stampede on the store when a key's cache period ends)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials

from touchstream.adapters.keys import ApiKey
from touchstream.auth import Authorizer


class _SlowKeys:
    """A networked key store (not ``lookup_is_local``) whose lookups wait for ``go``."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.asked: list[str] = []
        self.key = ApiKey("k1", "desk", "agent", None, "2026-01-01T00:00:00+00:00")

    def authenticate(self, token: str) -> ApiKey | None:
        self.asked.append(token)
        assert self.go.wait(5)
        return self.key if token == "tsk_good" else None

    def recent(self, token: str) -> ApiKey | None:
        return None  # every request misses the cache, as all do when its period ends


def _bearer(token: str) -> HTTPAuthorizationCredentials:
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)


def test_requests_missing_the_cache_at_once_share_one_lookup_per_token() -> None:
    keys = _SlowKeys()
    agent = Authorizer(keys)("agent")

    async def main() -> None:
        calls = [asyncio.ensure_future(agent(bearer=_bearer("tsk_good"), api_key=None))
                 for _ in range(20)]
        unknown = [asyncio.ensure_future(agent(bearer=None, api_key="tsk_bad"))
                   for _ in range(5)]
        calls[3].cancel()  # one client goes away: the others still get their answer
        await asyncio.sleep(0.05)
        keys.go.set()
        done = await asyncio.gather(*calls, *unknown, return_exceptions=True)
        assert [type(d).__name__ for d in done[:20]].count("CancelledError") == 1
        assert {d.key_id for d in done[:20] if not isinstance(d, BaseException)} == {"k1"}
        assert all(isinstance(d, HTTPException) and d.status_code == 401 for d in done[20:])
        assert sorted(keys.asked) == ["tsk_bad", "tsk_good"]
        # a lookup is shared only while in flight: the next miss asks the store again
        assert (await agent(bearer=_bearer("tsk_good"), api_key=None)).key_id == "k1"
        assert keys.asked.count("tsk_good") == 2

    asyncio.run(main())


def test_a_failed_lookup_fails_every_request_sharing_it_and_is_not_kept() -> None:
    keys = _SlowKeys()
    keys.go.set()
    failures = iter([OSError("store down")])

    def authenticate(token: str) -> ApiKey | None:
        keys.asked.append(token)
        for failure in failures:
            raise failure
        return keys.key

    keys.authenticate = authenticate  # type: ignore[method-assign]
    agent = Authorizer(keys)("agent")

    async def main() -> None:
        with pytest.raises(OSError, match="store down"):
            await agent(bearer=_bearer("tsk_good"), api_key=None)
        assert (await agent(bearer=_bearer("tsk_good"), api_key=None)).key_id == "k1"

    asyncio.run(main())
