"""The bulk writer's rows are byte for byte what the domain and the library's mapper store.

Each plain touchpoint is decided twice on copies of one customer: through the
domain (``apply_touchpoint``, then the hub's mapper) and through
``commands.bulk_rows``, with the clock and the nonces fixed. Topic, stream,
version and state bytes must be equal, and so must the customers afterwards
(what the cache and the snapshots get). Once with the production mapper
(personal fields sealed per customer), once with the library's mapper with
compression and the library's cipher on.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from copy import deepcopy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing import domain as es_domain
from eventsourcing.cipher import AESCipher
from eventsourcing.utils import get_topic

from commands import messages as m
from commands import service as sc
from commands.bulk import BulkImporter
from commands.bulk_rows import NotPlain, PlainTouchpoints, encoder_for
from commands.hub import Hub
from commands.naming import _HmacSha256
from domain.customer import Customer, email_thread_id
from domain.errors import CustomerErasedError, FutureOccurrenceError
from tests.support.demo import T0
from tests.support.hubs import make_hub
from touchstream.adapters.transcoder import OrjsonTranscoder

CID = UUID("8b0d6a55-7a51-4c3e-9f0e-2c1a3b4d5e6f")


def _commands(cid: UUID) -> list[m.Touchpoint]:
    at = T0 + timedelta(hours=3)
    return [
        m.LogCall(customer_id=cid, call_id="c1", from_number="+442079460018", queue="support",
                  agent="mia", ivr_choices=["2", "1"], duration_s=61, wait_s=3,
                  summary="ünïcode \"quoted\" \\ text", occurred_at=at, actor="pbx"),
        m.LogCall(customer_id=cid, call_id="c2", occurred_at=at, correlation_id="corr",
                  causation_id="cause"),
        m.RecordCallStep(customer_id=cid, call_id="c1", step="answered", sequence=2,
                         details={"leg": "a"}, occurred_at=at),
        m.RequestCallback(customer_id=cid, callback_id="cb1", number="+442079460018",
                          requested_for=at + timedelta(days=1), reason="later", occurred_at=at),
        m.CompleteCallback(customer_id=cid, callback_id="cb1", outcome="reached", occurred_at=at),
        m.RecordFax(customer_id=cid, fax_id="f1", pages=3, occurred_at=at),
        m.RecordVisit(customer_id=cid, visit_id="v1", visit_kind="field", staff="sam", notes="n",
                      duration_min=30, occurred_at=at),
        m.RecordWebForm(customer_id=cid, form_name="contact", submission_id="s1",
                        fields={"message": "hi"}, occurred_at=at),
    ]


def _emails(cid: UUID) -> list[m.Touchpoint]:
    """Recorded emails outside any case: thread ids worked out or given, both directions,
    with and without attachments (a nested model: dumped, not read as validated)."""
    at = T0 + timedelta(hours=4)
    return [
        m.RecordEmail(customer_id=cid, message_id="<q1@mail.example.com>",
                      from_address="ada@example.com", to=["help@hub.example"],
                      subject="Invoice ünïcode", body_text="Hello \"there\"\n", occurred_at=at,
                      actor="imap"),
        m.RecordEmail(customer_id=cid, message_id="<r1@mail.example.com>", direction="outbound",
                      from_address="help@hub.example", to=["ada@example.com"],
                      cc=["boss@example.com"], in_reply_to="<q1@mail.example.com>",
                      references=[" <q0@mail.example.com>", "<q1@mail.example.com>"],
                      subject="Re: Invoice", body_ref="a" * 64, raw_ref="b" * 64,
                      occurred_at=at),
        m.RecordEmail(customer_id=cid, message_id="<r2@mail.example.com>",
                      in_reply_to="<q1@mail.example.com>", from_address="ada@example.com",
                      occurred_at=at),
        m.RecordEmail(customer_id=cid, message_id="<t1@mail.example.com>", thread_id="given",
                      from_address="ada@example.com", occurred_at=at),
        m.RecordEmail(customer_id=cid, message_id="<a1@mail.example.com>",
                      from_address="ada@example.com", subject="scan", occurred_at=at,
                      attachments=[m.Attachment(sha256="c" * 64, size=10,
                                                content_type="application/pdf",
                                                filename="scan.pdf")]),
    ]


@pytest.fixture
def fixed(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The event timestamp (settable) and every random nonce fixed, so two encodings can be
    compared."""
    now = [T0]
    monkeypatch.setattr(es_domain, "datetime_now_with_tzinfo", lambda: now[0])
    monkeypatch.setattr(os, "urandom", lambda n: bytes(range(n)))
    return now


def _customer(hub: Hub) -> Customer:
    hub.execute(m.RegisterCustomer(customer_id=CID, name="Ada Lovelace", company="Analytical",
                                   source_key="reg:ada", occurred_at=T0))
    return hub.customer(CID)


def _domain_path(hub: Hub, customer: Customer, cmd: m.Touchpoint, key: str) -> Any:
    hub.apply_touchpoint(customer, cmd, key)
    (event,) = customer.collect_events()
    return hub.mapper.to_stored_event(event)


def _compare(hub: Hub, now: list[datetime]) -> None:
    rows = PlainTouchpoints(hub.context, encoder_for(hub.mapper))
    assert rows.writer is not None and rows.writer.prepared is not None  # orjson's prepared path
    base = _customer(hub)
    now[0] = T0 + timedelta(days=9)  # later than the registration: ``modified_on`` moves
    via_domain, direct = deepcopy(base), deepcopy(base)
    commands = _commands(CID) + _emails(CID)
    for n, cmd in enumerate(commands):
        key = hub.source_key_of(cmd)
        shape = rows.shape(cmd)
        assert shape is not None, type(cmd)
        # Fields read as validated, but an email's attachments (nested models).
        assert shape.direct == (not isinstance(cmd, m.RecordEmail)), type(cmd)
        expected = _domain_path(hub, via_domain, cmd, key)
        stored, event_id = rows.build(direct, cmd, key, shape)
        assert (stored.originator_id, stored.originator_version, stored.topic) == (
            expected.originator_id, expected.originator_version, expected.topic), n
        assert bytes(stored.state) == bytes(expected.state), n
        assert event_id == hub.naming.event_id(key)
        assert vars(direct) == vars(via_domain), n
        assert vars(hub.mapper.to_domain_event(stored)) == vars(
            hub.mapper.to_domain_event(expected))
    assert direct.version == base.version + len(commands)
    assert direct.touch_counts == {"phone": 5, "fax": 1, "web": 1, "email": 5, "visit": 1}


def test_rows_equal_the_domain_path_with_personal_fields_sealed(
    sqlite_env: dict[str, str], fixed: list[datetime]
) -> None:
    hub = make_hub(sqlite_env)
    try:
        assert hasattr(hub.mapper, "stored_event_of")  # the production, sealing mapper
        _compare(hub, fixed)
    finally:
        hub.close()


def test_rows_equal_the_library_mapper_with_compression_and_cipher(
    tmp_path: Path, fixed: list[datetime]
) -> None:
    hub = Hub(env={
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "plain.db"),
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(32),
    })
    try:
        assert hub.mapper.compressor is not None and hub.mapper.cipher is not None
        _compare(hub, fixed)
    finally:
        hub.close()


def test_rows_refuse_as_the_domain_does(sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    try:
        rows = PlainTouchpoints(hub.context, encoder_for(hub.mapper))
        customer = _customer(hub)
        ahead = m.LogCall(customer_id=CID, call_id="x",
                          occurred_at=hub.clock() + timedelta(days=30))
        with pytest.raises(FutureOccurrenceError):
            rows.build(customer, ahead, "call:x", rows.shape(ahead))  # type: ignore[arg-type]
        customer.erased = True
        call = m.LogCall(customer_id=CID, call_id="y", occurred_at=T0)
        version = customer.version
        with pytest.raises(CustomerErasedError):
            rows.build(customer, call, "call:y", rows.shape(call))  # type: ignore[arg-type]
        assert customer.version == version and not customer.touch_counts
        customer.erased = False
        email = m.RecordEmail(customer_id=CID, message_id="<m@x>", from_address="a@example.com",
                              to=["b@example.com"], subject="s", body_text="b", occurred_at=T0)
        shape = rows.shape(email)
        assert shape is not None
        thread = email_thread_id(CID, "<m@x>", None, [])
        customer.area("service")["threads"] = {thread: "a-case"}
        with pytest.raises(NotPlain):  # it joins the case: the domain decides
            rows.build(customer, email, "email:<m@x>", shape)
        assert customer.version == version and not customer.touch_counts
    finally:
        hub.close()


def test_an_email_in_a_cases_thread_joins_it_on_the_bulk_and_the_one_command_paths(
    sqlite_env: dict[str, str],
) -> None:
    hub = make_hub(sqlite_env)
    try:
        _customer(hub)

        def email(message_id: str, reply_to: str | None = None) -> m.RecordEmail:
            return m.RecordEmail(customer_id=CID, message_id=message_id,
                                 from_address="ada@example.com", in_reply_to=reply_to,
                                 references=[reply_to] if reply_to else [], occurred_at=T0)

        first = hub.execute(email("<q1@x>"))
        assert len(first.event_ids) == 1
        hub.execute(sc.OpenCase(customer_id=CID, case_id=uuid4(), category="billing",
                                channel="email", subject="Invoice",
                                origin_event_id=UUID(first.event_ids[0])))
        assert len(hub.execute(email("<r1@x>", "<q1@x>")).event_ids) == 2  # email, link
        bulk = BulkImporter(hub).import_history([email("<r2@x>", "<q1@x>"), email("<n@x>")])
        assert [len(r.recorded.event_ids) for r in bulk] == [2, 1]  # type: ignore[union-attr]
        links = [e for e in hub.stream(CID) if type(e).__name__ == "CaseTouchpointLinked"]
        assert len(links) == 2
    finally:
        hub.close()


@pytest.mark.parametrize("key_bytes", [0, 1, 32, 64, 65, 200])
def test_the_precomputed_hmac_is_hmac_sha256(key_bytes: int) -> None:
    key = bytes(range(256))[:key_bytes]
    for text in ("", "call:x#0", "ünïcode " * 40):
        assert _HmacSha256(key).mac(text) == hmac.new(key, text.encode(), hashlib.sha256).digest()


def test_the_prepared_writer_tags_ids_and_times_itself_only_for_the_librarys_transcodings(
    sqlite_env: dict[str, str],
) -> None:
    """The byte comparisons above run the path that tags the event id and the times in
    place (both hubs' writers have the names); a transcoder with another datetime
    transcoding leaves them to orjson's ``default``, and a UUID subclass's name too."""
    from eventsourcing.persistence import DatetimeAsISO, UUIDAsHex

    hub = make_hub(sqlite_env)
    try:
        writer = encoder_for(hub.mapper)
        assert writer is not None
        assert (writer.uuid_tag, writer.datetime_tag) == ("uuid_hex", "datetime_iso")
    finally:
        hub.close()

    class OwnDatetime(DatetimeAsISO):
        def encode(self, obj: datetime) -> str:
            return obj.isoformat(timespec="seconds")

    class OwnUUID(UUIDAsHex):
        pass

    transcoder = OrjsonTranscoder()
    transcoder.register(OwnUUID())
    transcoder.register(OwnDatetime())
    assert transcoder.tag_names() == (None, None)
    plain = OrjsonTranscoder()
    plain.register(UUIDAsHex())
    plain.register(DatetimeAsISO())
    assert plain.tag_names() == ("uuid_hex", "datetime_iso")
