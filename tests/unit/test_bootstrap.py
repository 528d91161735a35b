"""The bootstrap builds each dependency once, shares it, and closes only what it built."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from commands import messages as m
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies, bootstrap, opened
from touchstream.settings import SettingsError


def test_each_dependency_is_built_once_even_when_asked_from_many_threads(
        sqlite_env: dict[str, str]) -> None:
    deps = bootstrap(sqlite_env)
    seen: list[Any] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        seen.append((deps.hub, deps.keys, deps.read_views, deps.call_directory, deps.forms))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len({tuple(map(id, s)) for s in seen}) == 1
    finally:
        deps.close()


def test_close_closes_what_it_built_and_leaves_what_it_was_given(
        sqlite_env: dict[str, str]) -> None:
    given = make_hub(sqlite_env)
    try:
        deps = Dependencies(settings_mod.load(sqlite_env), hub=given)
        keys, directory = deps.keys, deps.call_directory
        closed: list[str] = []
        real_close = keys.close

        def spy_close() -> None:
            closed.append("keys")
            real_close()

        keys.close = spy_close  # type: ignore[method-assign]
        assert deps.hub is given
        deps.close()
        assert closed == ["keys"]
        given.execute(m.RegisterCustomer(name="Ada", source_key="still-open"))  # not closed
        assert deps.keys is not keys and deps.call_directory is not directory  # built afresh
        deps.close()
    finally:
        given.close()


def test_a_bad_setting_fails_before_anything_is_built(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = {"TOUCHSTREAM_DATA": str(data), "TOUCHSTREAM_SNAPSHOT_INTERVAL": "often"}
    with pytest.raises(SettingsError, match="TOUCHSTREAM_SNAPSHOT_INTERVAL"), opened(bad):
        pass
    assert not data.exists()


def test_the_app_serves_from_the_dependencies_it_is_given(sqlite_env: dict[str, str]) -> None:
    with opened(sqlite_env) as deps:
        app = create_app(deps)
        context = app.state.context
        assert context.deps is deps and context.hub() is deps.hub and context.keys is deps.keys
