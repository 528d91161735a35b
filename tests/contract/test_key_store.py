"""API keys, the same contract on SQLite and PostgreSQL read stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import store_env
from touchstream import settings as settings_mod
from touchstream.adapters.keys import (
    KeyStore,
    PartnerScopeError,
    UnknownKeyError,
    UnknownRoleError,
    hash_token,
    open_key_store,
)


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
