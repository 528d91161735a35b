"""Fixtures the read-model contract suites share: each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.hub import Hub
from projections.store import ReadStore
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies


@pytest.fixture(params=["sqlite", "postgres"])
def read_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for a fresh store of each kind (PostgreSQL skipped where none can run)."""
    return dict(request.getfixturevalue(f"{request.param}_env"))


@pytest.fixture
def hub(read_env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(read_env)
    yield h
    h.close()


@pytest.fixture
def store(read_env: dict[str, str]) -> ReadStore:
    return Dependencies(settings_mod.load(read_env)).read_store
