"""The HTTP app on a temporary store, with one API key per role (for every router's tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from commands.hub import Hub
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, KeyStore, open_key_store
from touchstream.app import RouterFactory, create_app
from touchstream.bootstrap import Dependencies
from touchstream.wiring import build_hub


@dataclass
class Api:
    """A TestClient plus the hub and key store behind it."""

    client: TestClient
    hub: Hub
    keys: KeyStore
    tokens: dict[str, str] = field(default_factory=dict)  # role → token

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, route: str, body: object, role: str = "admin", **headers: str) -> Any:
        return self.client.post(route, json=body, headers={**self.auth(role), **headers})


@contextmanager
def running_api(
    env: dict[str, str], routers: tuple[RouterFactory, ...] = ()
) -> Iterator[Api]:
    """``create_app`` on the store ``env`` points at; a key per role (partner: ``p-1``)."""
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    tokens = {
        role: keys.create(role, "p-1" if role == "partner" else None, f"test-{role}")[1]
        for role in ROLES
    }
    try:
        deps = Dependencies(conf, hub=hub, keys=keys)
        with TestClient(create_app(deps, routers=routers, services=[deps])) as client:
            yield Api(client=client, hub=hub, keys=keys, tokens=tokens)
    finally:
        keys.close()
        hub.close()
