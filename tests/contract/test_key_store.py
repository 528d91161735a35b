"""API keys, the same contract on SQLite and PostgreSQL read stores."""

# No "from __future__ import annotations": FastAPI must see a route signature evaluated.

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from tests.conftest import store_env
from touchstream import settings as settings_mod
from touchstream.adapters.keys import (
    KeyStore,
    PartnerScopeError,
    PostgresKeyStore,
    UnknownKeyError,
    UnknownRoleError,
    hash_token,
    open_key_store,
)
from touchstream.auth import Authorizer, Principal


@pytest.fixture(params=["sqlite", "postgres"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    store = open_key_store(settings_mod.load(store_env(str(request.param), tmp_path / "data")))
    yield store
    store.close()


def test_token_authenticates_its_key_and_only_its_hash_is_stored(keys: KeyStore) -> None:
    key, token = keys.create("agent", name="mia")
    assert keys.authenticate(token) == key
    rows = keys._run("SELECT * FROM touchstream_api_keys")
    assert token not in repr(rows) and hash_token(token) in repr(rows)
    assert keys.authenticate(token + "x") is None
    assert keys.authenticate("tsk_" + "a" * 500) is None


def test_revoked_key_stays_listed_and_authenticates_as_inactive(keys: KeyStore) -> None:
    key, token = keys.create("partner", "p-9")
    assert keys.revoke(key.id).revoked_at is not None
    found = keys.authenticate(token)
    assert found is not None and not found.active
    assert keys.revoke(key.id).revoked_at == found.revoked_at  # idempotent
    assert [k.id for k in keys.list_keys()] == [key.id]


def test_invalid_keys_are_refused(keys: KeyStore) -> None:
    with pytest.raises(UnknownRoleError):
        keys.create("root")
    with pytest.raises(PartnerScopeError):
        keys.create("partner")
    with pytest.raises(PartnerScopeError):
        keys.create("admin", "p-1")
    with pytest.raises(UnknownKeyError):
        keys.revoke("key_missing")
    assert keys.list_keys() == []


def test_fingerprint_keeps_the_first_body(keys: KeyStore) -> None:
    assert keys.fingerprint("k:route:1") is None
    keys.remember("k:route:1", "aa")
    keys.remember("k:route:1", "bb")
    assert keys.fingerprint("k:route:1") == "aa"


def test_postgres_keys_are_remembered_for_a_second_and_revocation_is_honoured(
        tmp_path: Path) -> None:
    """A PostgreSQL key found is answered from memory (no round trip) for ``cache_s``:
    revoked by this store it is refused at once; revoked by another process (another
    store) it is refused once ``cache_s`` has passed since it was read. Unknown tokens
    are never remembered. Over HTTP, through ``authorize``."""
    uri = settings_mod.load(store_env("postgres", tmp_path / "data")).read_store
    now = [100.0]
    served = PostgresKeyStore(uri, cache_s=1.0, clock=lambda: now[0])
    other = PostgresKeyStore(uri)  # e.g. ``touchstream keys revoke`` in another process
    try:
        app, agent = FastAPI(), Authorizer(served)("agent")

        @app.get("/x")
        def x(who: Annotated[Principal, Depends(agent)]) -> dict[str, str]:
            return {"key": who.key_id}

        client = TestClient(app)
        key, token = other.create("agent")
        assert served.recent(token) is None  # never looked up yet
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/x", headers=bearer).json() == {"key": key.id}
        assert served.recent(token) == key
        assert client.get("/x", headers={"Authorization": "Bearer tsk_nope"}).status_code == 401
        assert served.recent("tsk_nope") is None

        other.revoke(key.id)
        now[0] += 0.9  # within the second since it was read: still answered from memory
        assert client.get("/x", headers=bearer).status_code == 200
        now[0] += 0.1
        assert served.recent(token) is None
        refused = client.get("/x", headers=bearer)
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        assert served.recent(token) is not None and not served.recent(token).active

        mine, mine_token = other.create("sales")
        mine_bearer = {"X-API-Key": mine_token}  # created elsewhere: works at once
        assert client.get("/x", headers=mine_bearer).status_code == 403  # role, not key
        assert served.recent(mine_token) == mine
        served.revoke(mine.id)  # this store's own revocation: at once
        assert served.recent(mine_token) is None
        assert client.get("/x", headers=mine_bearer).status_code == 401
    finally:
        served.close()
        other.close()
