"""Fresh, temporary stores for benchmarks: never the user's data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from touchstream import settings as settings_mod
from touchstream.bench import pg


@contextmanager
def fresh_settings(store: str) -> Iterator[settings_mod.Settings]:
    """Settings pointing at an empty store of the given kind, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="touchstream-bench-") as tmp:
        env = {"TOUCHSTREAM_DATA": str(Path(tmp) / "data"), "TOUCHSTREAM_DEFAULT_REGION": "GB"}
        if store == "sqlite":
            yield settings_mod.load(env)
            return
        if store != "postgres":
            raise settings_mod.SettingsError(f"unknown bench store {store!r}: sqlite or postgres")
        with pg.temporary_database() as uri:
            env["TOUCHSTREAM_EVENT_STORE"] = uri
            env["TOUCHSTREAM_READ_STORE"] = uri
            yield settings_mod.load(env)
