"""The sealing mapper's fast paths keep the stored form and its guarantees exactly."""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterator
from uuid import UUID

import pytest

from commands import messages as m
from commands.hub import Hub
from tests.support.demo import T0
from tests.support.hubs import make_hub
from touchstream.privacy.datakeys import NONCE_BYTES
from touchstream.privacy.mapper import (
    SEALED,
    STREAM_CACHE_SIZE,
    PersonalDataMapper,
    TamperedRecordError,
)


@pytest.fixture
def hub(sqlite_env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(sqlite_env)
    yield h
    h.close()


def test_the_sealed_fields_are_the_transcoders_own_json_and_read_back_whole(hub: Hub) -> None:
    mapper: PersonalDataMapper = hub.mapper  # type: ignore[assignment]
    cid = hub.execute(m.RegisterCustomer(name="Ada Lovelace", company="Analytical Ltd",
                                         occurred_at=T0)).customer_id
    hub.execute(m.LogCall(customer_id=UUID(cid), call_id="c-1", from_number="+442079460123",
                          summary="asked about ünïcode \"quotes\" and \\ slashes",
                          ivr_choices=["2", "1"], occurred_at=T0))
    event = list(hub.stream(UUID(cid)))[-1]
    stored = mapper.to_stored_event(event)
    sealed = binascii.a2b_base64(json.loads(stored.state)[SEALED])
    plain = mapper.keys.cipher_for_read(cid).decrypt(
        sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
        f"{cid}|{stored.originator_version}|{stored.topic}".encode())
    secret = json.loads(plain)
    assert plain == mapper.transcoder.encode(secret)  # byte for byte the library's JSON
    assert secret["summary"] == event.summary and secret["from_number"] == "+442079460123"
    again = mapper.to_domain_event(stored)
    assert vars(again) == vars(event)


def test_a_changed_ciphertext_still_fails_authentication(hub: Hub) -> None:
    mapper: PersonalDataMapper = hub.mapper  # type: ignore[assignment]
    cid = hub.execute(m.RegisterCustomer(name="Ada", occurred_at=T0)).customer_id
    stored = mapper.to_stored_event(list(hub.stream(UUID(cid)))[-1])
    doc = json.loads(stored.state)
    blob = bytearray(binascii.a2b_base64(doc[SEALED]))
    blob[-1] ^= 1
    doc[SEALED] = binascii.b2a_base64(bytes(blob), newline=False).decode()
    changed = type(stored)(stored.originator_id, stored.originator_version, stored.topic,
                           json.dumps(doc).encode())
    with pytest.raises(TamperedRecordError):
        mapper.to_domain_event(changed)


def test_the_stream_id_cache_stays_bounded(hub: Hub) -> None:
    mapper: PersonalDataMapper = hub.mapper  # type: ignore[assignment]
    for i in range(STREAM_CACHE_SIZE + 5):
        assert mapper._stream(UUID(int=i)) == str(UUID(int=i))
    assert len(mapper._streams) <= STREAM_CACHE_SIZE
