"""Build the write model for tests, including the reservation-protocol variant."""

from __future__ import annotations

from commands.hub import Hub
from touchstream import settings as settings_mod
from touchstream import wiring


def make_hub(env: dict[str, str]) -> Hub:
    """``TOUCHSTREAM_TEST_PLAIN_RECORDER=y`` drops the SQL source-key table, so the
    EventStoreDB protocol (reservation stream + scan) runs on SQLite."""
    settings = settings_mod.load(env)
    if env.get("TOUCHSTREAM_TEST_PLAIN_RECORDER"):
        store_env = wiring.event_store_env(settings)
        store_env.pop("APPLICATION_RECORDER_TOPIC")
        return Hub(env=store_env, default_region=settings.default_region)
    return wiring.build_hub(settings)
