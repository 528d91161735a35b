"""Who may call what: API keys → ``Principal`` → roles admitted per route.

Interface for every router (commands, read API, webhooks)::

    def read_routes(ctx: AppContext) -> APIRouter:    # a RouterFactory for create_app
        router, staff = APIRouter(), ctx.authorize("agent", "sales")
        @router.get("/x")
        def x(who: Annotated[Principal, Depends(staff)]) -> ...: ...

(A module defining routes inside a factory like this must not use
``from __future__ import annotations``: FastAPI then cannot resolve the local
``staff`` in the string annotation and treats ``who`` as a query parameter.)

``authorize(*roles)`` returns a FastAPI dependency. It reads the token from
``Authorization: Bearer <token>`` (or ``X-API-Key: <token>``) and returns a
``Principal(key_id, role, partner_id, name)``; it answers

* **401** with ``WWW-Authenticate: Bearer`` when the token is missing, unknown
  or revoked (the reason says which; on PostgreSQL a key revoked by another process,
  e.g. ``touchstream keys revoke``, is refused within ``KEY_CACHE_S``, 1 s: see
  ``PostgresKeyStore``), and
* **403** when the key's role is not among ``roles`` (the reason names the
  allowed roles).

``admin`` is admitted everywhere. Roles are listed in ``touchstream.adapters.keys.ROLES``;
naming an unknown role raises ``ValueError`` when the route is built, not when
it is called. A ``partner`` principal carries ``partner_id``: routes that admit
partners must scope what they return to that partner's customers themselves.

There is no switch that turns authentication off: tests and local development
create keys (``touchstream keys create``, ``scripts/start`` prints an admin key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from touchstream import logs
from touchstream.adapters.keys import ROLES, ApiKey, KeyLookup

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <token>`")
_CHALLENGE = 'Bearer realm="touchstream"'


@dataclass(frozen=True)
class Principal:
    """The caller, as identified by its API key."""

    key_id: str
    role: str
    partner_id: str | None
    name: str


def _unauthorized(reason: str, error: str = "invalid_token") -> HTTPException:
    challenge = _CHALLENGE if error == "missing" else f'{_CHALLENGE}, error="{error}"'
    return HTTPException(401, detail=reason, headers={"WWW-Authenticate": challenge})


class Authorizer:
    """Builds one dependency per set of admitted roles, all over one key store."""

    def __init__(self, keys: KeyLookup) -> None:
        self.keys = keys
        self.inline = bool(getattr(keys, "lookup_is_local", False))
        #: token -> its lookup in flight on the thread pool, shared by every request that
        #: misses the cache meanwhile (see ``_looked_up``)
        self._lookups: dict[str, asyncio.Future[ApiKey | None]] = {}

    def principal(self, token: str | None) -> Principal:
        """The principal for a raw token; raises 401 ``HTTPException`` otherwise."""
        if not token:
            raise _unauthorized(
                "missing API key: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>'",
                "missing",
            )
        return self._principal_of(self.keys.authenticate(token))

    async def _looked_up(self, token: str) -> ApiKey | None:
        """The key of ``token`` from the store, one lookup at a time per token: when a
        key's cache period ends, every request in flight with it missed the cache at
        once and each took a thread hop and a round trip of its own (2-3% of a
        PostgreSQL timeline page, ``bench timeline``); they now share the first one's.
        A request that joins a lookup already under way gets an answer at most that
        lookup's round trip older than its own would be, well within the cache period
        every other request is answered from."""
        loop = asyncio.get_running_loop()
        pending = self._lookups.get(token)
        if pending is None or pending.get_loop() is not loop:
            pending = loop.create_task(run_in_threadpool(self.keys.authenticate, token))
            self._lookups[token] = pending

            def done(finished: asyncio.Future[ApiKey | None]) -> None:
                if self._lookups.get(token) is finished:
                    del self._lookups[token]

            pending.add_done_callback(done)
        # shielded: one waiter's cancellation (its client went away) is not the others'
        return await asyncio.shield(pending)

    @staticmethod
    def _principal_of(key: ApiKey | None) -> Principal:
        if key is None:
            raise _unauthorized("unknown API key")
        if not key.active:
            raise _unauthorized(f"API key {key.id} was revoked at {key.revoked_at}")
        return Principal(key_id=key.id, role=key.role, partner_id=key.partner_id, name=key.name)

    def __call__(self, *roles: str) -> Callable[..., Principal]:
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ValueError(f"authorize() needs roles from {ROLES}, got {roles}")
        admitted = tuple(dict.fromkeys((*roles, "admin")))

        async def dependency(
            bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            api_key: Annotated[str | None, Depends(_api_key)],
        ) -> Principal:
            token = bearer.credentials if bearer else api_key
            # A local SQLite lookup (~10 µs on a kept-open connection) runs inline;
            # a networked store goes to the thread pool so the event loop never waits.
            # A networked store's key found within its cache period (KEY_CACHE_S) is
            # answered from memory, without the hop; one lookup per token at a time.
            if self.inline or not token:
                who = self.principal(token)
            elif (known := self.keys.recent(token)) is not None:
                who = self._principal_of(known)
            else:
                who = self._principal_of(await self._looked_up(token))
            logs.note_key(who.key_id)  # the request's log lines name the key
            if who.role not in admitted:
                raise HTTPException(
                    403,
                    detail=f"role {who.role!r} may not call this route; "
                    f"allowed roles: {', '.join(admitted)}",
                )
            return who

        dependency.__name__ = "authorize_" + "_".join(admitted)
        return dependency
