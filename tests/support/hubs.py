"""Build the write model for tests, including the reservation-protocol variant."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from commands.hub import Hub
from commands.identity import contact_key
from domain.claims import ContactPointClaim
from touchstream import settings as settings_mod
from touchstream import wiring


def make_hub(env: dict[str, str]) -> Hub:
    """``TOUCHSTREAM_TEST_PLAIN_RECORDER=y`` drops the SQL source-key table, so the
    EventStoreDB protocol (reservation stream + scan) runs on SQLite."""
    settings = settings_mod.load(env)
    if env.get("TOUCHSTREAM_TEST_PLAIN_RECORDER"):
        # An empty topic selects the library's own recorder (no source-key table).
        return wiring.build_hub(settings, {"APPLICATION_RECORDER_TOPIC": ""})
    return wiring.build_hub(settings)


# The write model's contract runs on every store, plus the EventStoreDB protocol on SQLite.
WRITE_STORES = ["sqlite", "sqlite-reservation", "postgres", "kurrentdb"]


def write_env(kind: str, data_dir: Path) -> dict[str, str]:
    """Settings for a fresh store of ``kind`` (one of ``WRITE_STORES``); skips when absent."""
    from tests.conftest import store_env

    env = store_env(kind.split("-")[0], data_dir)
    if kind == "sqlite-reservation":
        env["TOUCHSTREAM_TEST_PLAIN_RECORDER"] = "y"
    return env


def orphan_claim(hub: Hub, kind: str, value: str, owner: UUID | None = None) -> UUID:
    """What a kill between claiming a contact point and registering its customer leaves:
    the claim alone (by default for the contact's prospect, as a first contact makes)."""
    ckey = contact_key(kind, value)
    owner = owner or hub.naming.prospect(ckey)
    claim = ContactPointClaim.open(hub.naming.claim(ckey), ckey)
    claim.claim(str(owner))
    hub.save(claim)
    return owner
