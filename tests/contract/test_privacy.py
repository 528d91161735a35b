"""Per-customer encryption and erasure, on SQLite and PostgreSQL alike (EventStoreDB when set).

Canary strings go into every personal field of a customer's stream; at rest
they must not appear in the customer's stored events; after erasure the
stream still reads (clear fields as recorded, personal ones erased), every
read model shows the erased form, a rebuild equals the live read models, and
the channel counts are what they were.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from channels.blobs import BlobStore
from commands import email_messages as em
from commands import messages as m
from commands.hub import CustomerNotFoundError, Hub
from projections import registry
from projections.engine import Worker
from projections.store import ReadStore
from projections.summary.view import SummaryView
from projections.timeline.view import TimelineView
from replays.rebuild import rebuild
from tests.support.demo import T0
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies, event_source_of
from touchstream.privacy.datakeys import DataKeys, new_master_key
from touchstream.privacy.erasure import Eraser
from touchstream.privacy.mapper import TamperedRecordError
from touchstream.wiring import build_data_keys

CANARY = "Zq7canaryXv"


@pytest.fixture(params=["sqlite", "postgres", "kurrentdb"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    from tests.conftest import store_env

    return store_env(request.param, tmp_path / "data")


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(env)
    yield h
    h.close()


def keys_of(hub: Hub) -> DataKeys:
    return hub.mapper.keys  # type: ignore[attr-defined, no-any-return]


def seed_canary(hub: Hub, nick: str = "a") -> str:
    c = f"{CANARY}{nick}"
    cid = hub.execute(m.RegisterCustomer(
        name=f"Name {c}", company=f"Co {c}", source_key=f"canary:{nick}", occurred_at=T0,
        contact_points=[m.ContactPointIn(kind="email", value=f"{c.lower()}@example.com")],
    )).customer_id
    at = T0
    for i in range(3):
        at += timedelta(hours=1)
        hub.execute(m.LogCall(customer_id=cid, call_id=f"{nick}-call-{i}", summary=f"said {c}",  # type: ignore[arg-type]
                              from_number="+442079460123", occurred_at=at))
    hub.execute(m.RecordEmail(customer_id=cid, message_id=f"<{nick}-1@mail.example>",  # type: ignore[arg-type]
                              from_address=f"{c.lower()}@example.com", subject=f"Subj {c}",
                              body_text=f"Body {c}", occurred_at=at))
    hub.execute(m.AddNote(customer_id=cid, text=f"Note {c}", visibility="shared"))  # type: ignore[arg-type]
    hub.execute(m.RecordVisit(customer_id=cid, visit_id=f"{nick}-v1", visit_kind="office",  # type: ignore[arg-type]
                              staff="jo", purpose=f"Purpose {c}", notes=f"Notes {c}",
                              occurred_at=at))
    hub.execute(m.RecordWebForm(customer_id=cid, form_name="contact", submission_id=f"{nick}-f1",  # type: ignore[arg-type]
                                fields={"message": f"Msg {c}"}, occurred_at=at))
    hub.execute(em.SendEmail(customer_id=cid, source_key=f"{nick}-out", from_address="mia@shop.example",  # type: ignore[arg-type]
                             to=[f"{c.lower()}@example.com"], subject=f"Re {c}",
                             body_text=f"Dear {c}"))
    return cid


def customer_rows(env: dict[str, str], hub: Hub) -> list[tuple[str, bytes]]:
    """(topic, stored state) of every stored customer event, read past the application."""
    settings = settings_mod.load(env)
    if settings.event_store_kind == "postgres":
        with psycopg.connect(settings.event_store) as conn:
            return [(t, bytes(s)) for t, s in conn.execute(
                f"SELECT topic, state FROM {hub.recorder.events_table_name} "  # type: ignore[attr-defined]
                "WHERE topic LIKE 'domain.customer:%'")]
    notes = hub.recorder.select_notifications(1, 100_000)
    return [(n.topic, n.state) for n in notes if n.topic.startswith("domain.customer:")]


def catch_up(env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    try:
        source = Dependencies(settings_mod.load(env), hub=hub).event_source()
        Worker(db, source, [(p, None) for p in registry.select(None)], batch=7).catch_up()
        source.close()
    finally:
        db.close()


def test_personal_fields_never_reach_the_stored_customer_events(env: dict[str, str],
                                                                hub: Hub) -> None:
    cid = seed_canary(hub)
    rows = customer_rows(env, hub)
    assert len(rows) >= 8
    for topic, state in rows:
        assert CANARY.encode() not in state and CANARY.lower().encode() not in state, topic
        assert b'"_sealed"' in state, topic
    events = list(hub.stream(UUID(cid)))
    assert events[0].name == f"Name {CANARY}a"  # type: ignore[attr-defined]
    assert any(getattr(e, "body_text", None) == f"Body {CANARY}a" for e in events)


def test_erasure_keeps_the_log_and_the_counts_and_redacts_every_read_model(
        env: dict[str, str], hub: Hub) -> None:
    settings = settings_mod.load(env)
    store = Dependencies(settings).read_store
    cid = seed_canary(hub)
    other = seed_canary(hub, "b")
    catch_up(env, hub, store)
    before = SummaryView(store).summary(cid)
    assert before is not None and before["name"] == f"Name {CANARY}a"
    events_before = list(hub.stream(UUID(cid)))

    eraser = Eraser(hub, keys_of(hub), _blobs(settings, hub))
    report = eraser.erase(UUID(cid), "GDPR-17 case 4711", actor="privacy-officer")
    assert not report.recorded.duplicate and report.customers == [cid]
    assert eraser.erase(UUID(cid), "GDPR-17 case 4711", actor="x").recorded.duplicate
    with pytest.raises(CustomerNotFoundError):
        eraser.erase(UUID(int=7), "no such person", actor="x")

    # The stream stays, every event still reads: clear fields as recorded.
    hub.forget(UUID(cid))
    after = list(hub.stream(UUID(cid)))
    assert len(after) == len(events_before) + 1
    for old, new in zip(events_before, after, strict=False):
        assert (type(new), new.channel, new.occurred_at, new.event_id) == (  # type: ignore[attr-defined]
            type(old), old.channel, old.occurred_at, old.event_id)  # type: ignore[attr-defined]
        assert new.__dict__.get("personal_data_erased") is True
        assert CANARY not in repr(new.__dict__)
    assert hub.customer(UUID(cid)).erased
    # Its contact points were released: the same address later starts a new prospect.
    assert hub.find_by_contact("email", f"{CANARY.lower()}a@example.com") is None
    again = hub.execute(m.RecordEmail(message_id="<later@mail.example>",
                                      from_address=f"{CANARY.lower()}a@example.com",
                                      subject="hello again"))
    assert again.customer_id != cid

    catch_up(env, hub, store)
    erased = SummaryView(store).summary(cid)
    assert erased is not None and erased["name"] == "(erased)" and not erased["contact_points"]
    assert erased["channels"] == before["channels"]  # counts survive
    page = TimelineView(store).page(cid, limit=100)
    assert len(page.items) == len(after)
    assert all(i["subject"] is None and i["summary"] is None for i in page.items)
    assert CANARY not in json.dumps(page.items, default=str)
    db = store.connect()
    try:
        from projections.engine import live_generation

        gen = live_generation(db, "outbox")
        assert gen is not None
        rows = db.all(f"SELECT status, payload, detail FROM outbox_g{gen.generation}_entry "
                      "WHERE customer_id=?", (cid,))
    finally:
        db.close()
    assert rows and all(r[0] == "failed" and CANARY not in r[1] for r in rows), rows
    untouched = SummaryView(store).summary(other)
    assert untouched is not None and untouched["name"] == f"Name {CANARY}b"

    source = Dependencies(settings, hub=hub).event_source()
    # Filled by two processes (a long log's way): the erased form still rebuilt exactly.
    results = rebuild(store, source, registry.select(None), workers=2, parallel_from=1,
                      source_factory=partial(event_source_of, settings))
    source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def test_erasing_one_record_of_a_merged_person_erases_all_of_them(hub: Hub,
                                                                  env: dict[str, str]) -> None:
    a, b = seed_canary(hub, "a"), seed_canary(hub, "b")
    hub.execute(m.MergeCustomers(source_id=UUID(b), target_id=UUID(a)))
    report = Eraser(hub, keys_of(hub), _blobs(settings_mod.load(env), hub)).erase(
        UUID(b), "GDPR-17 case 9", actor="privacy")
    assert sorted(report.customers) == sorted([a, b])
    assert hub.customer(UUID(a)).erased and hub.customer(UUID(b)).erased


def test_a_moved_or_flipped_ciphertext_is_refused_on_read(env: dict[str, str], hub: Hub) -> None:
    if settings_mod.load(env).event_store_kind == "kurrentdb":
        pytest.skip("EventStoreDB events cannot be rewritten in place")
    cid = seed_canary(hub)
    settings = settings_mod.load(env)
    table = hub.recorder.events_table_name  # type: ignore[attr-defined]
    hub.close()
    first, second = _sealed_pair(settings, table)
    _write_state(settings, table, second[0], second[1],
                 _with_sealed(second[2], _sealed_of(first[2])))
    fresh = make_hub(env)
    try:
        with pytest.raises(TamperedRecordError, match="failed authentication"):
            list(fresh.stream(UUID(cid)))
        blob = bytearray(base64.b64decode(_sealed_of(first[2])))
        blob[-1] ^= 0x01
        _write_state(settings, table, second[0], second[1],
                     _with_sealed(second[2], base64.b64encode(bytes(blob)).decode()))
        with pytest.raises(TamperedRecordError):
            list(fresh.stream(UUID(cid)))
    finally:
        fresh.close()


def test_rotating_the_master_key_rewraps_without_touching_events(env: dict[str, str],
                                                                 hub: Hub) -> None:
    cid = seed_canary(hub)
    rows_before = customer_rows(env, hub)
    keys = keys_of(hub)  # keys made in one go (a batch of blobs) rotate like the others
    keys.destroy("blob:gone")
    keys.prepare_for_write(["blob:new1", "blob:new2", cid, "blob:gone"])
    rows = keys.table.get_many(["blob:new1", "blob:new2", "blob:gone", cid])
    assert rows["blob:gone"] is None and None not in (rows["blob:new1"], rows["blob:new2"])
    prepared = keys.key_for_write("blob:new1")
    new = new_master_key()
    assert keys_of(hub).rotate_master(base64.urlsafe_b64decode(new)) >= 1
    hub.close()
    rotated_env = {**env, "TOUCHSTREAM_MASTER_KEY": new}
    again = make_hub(rotated_env)
    try:
        assert next(iter(again.stream(UUID(cid)))).name == f"Name {CANARY}a"  # type: ignore[attr-defined]
        assert customer_rows(rotated_env, again) == rows_before
    finally:
        again.close()
    assert build_data_keys(settings_mod.load(rotated_env)).key_for_read(cid)
    assert build_data_keys(settings_mod.load(rotated_env)).key_for_read("blob:new1") == prepared


# -- helpers -------------------------------------------------------------------
def _blobs(settings: settings_mod.Settings, hub: Hub) -> BlobStore:
    """The app's blob store (keyed addresses, sealed under the hub's data keys)."""
    return Dependencies(settings, hub=hub).blobs


def _sealed_of(state: bytes) -> str:
    return str(json.loads(state)["_sealed"])


def _with_sealed(state: bytes, sealed: str) -> bytes:
    doc = json.loads(state)
    doc["_sealed"] = sealed
    return json.dumps(doc, separators=(",", ":")).encode()


def _sealed_pair(settings: settings_mod.Settings, table: str) -> list[tuple[str, int, bytes]]:
    sql = (f"SELECT originator_id, originator_version, state FROM {table} "
           "WHERE topic LIKE '%CallLogged' ORDER BY originator_version LIMIT 2")
    if settings.event_store_kind == "postgres":
        with psycopg.connect(settings.event_store) as conn:
            return [(str(o), v, bytes(s)) for o, v, s in conn.execute(sql)]
    import sqlite3

    with sqlite3.connect(settings_mod.sqlite_path(settings.event_store)) as conn:
        return [(o, v, s) for o, v, s in conn.execute(sql)]


def _write_state(settings: settings_mod.Settings, table: str, oid: str, version: int,
                 state: bytes) -> None:
    if settings.event_store_kind == "postgres":
        with psycopg.connect(settings.event_store) as conn:
            conn.execute(f"UPDATE {table} SET state=%s WHERE originator_id=%s "
                         "AND originator_version=%s", (state, UUID(oid), version))
        return
    import sqlite3

    with sqlite3.connect(settings_mod.sqlite_path(settings.event_store)) as conn:
        conn.execute(f"UPDATE {table} SET state=? WHERE originator_id=? "
                     "AND originator_version=?", (state, oid, version))


def test_subject_export_holds_every_event_decrypted_with_a_checked_manifest(
        env: dict[str, str], hub: Hub, tmp_path: Path) -> None:
    import hashlib
    import zipfile

    from projections.summary.view import SummaryView as SV
    from touchstream.privacy.export import export_subject

    settings = settings_mod.load(env)
    store = Dependencies(settings).read_store
    a, b = seed_canary(hub, "a"), seed_canary(hub, "b")
    hub.execute(m.MergeCustomers(source_id=UUID(b), target_id=UUID(a)))
    blobs = _blobs(settings, hub)
    ref = blobs.put(f"raw mail of {CANARY}".encode())
    hub.execute(m.RecordEmail(customer_id=UUID(a), message_id="<raw@mail.example>",
                              from_address="x@example.com", subject="with raw", body_ref=ref))
    catch_up(env, hub, store)
    out = tmp_path / "export.zip"
    with out.open("wb") as fh:
        manifest = export_subject(hub, SV(store), TimelineView(store), blobs, UUID(a), fh)
    assert sorted(manifest.customers) == sorted([a, b])
    with zipfile.ZipFile(out) as zf:
        listed = json.loads(zf.read("manifest.json"))
        assert set(listed["parts"]) == {"events.jsonl", "summary.json", "timeline.jsonl",
                                        f"blobs/{ref}"}
        for name, meta in listed["parts"].items():
            data = zf.read(name)
            assert hashlib.sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["bytes"]
        events = [json.loads(line) for line in zf.read("events.jsonl").splitlines()]
    assert len(events) == len(list(hub.stream(UUID(a)))) + len(list(hub.stream(UUID(b))))
    assert any(e.get("body_text") == f"Body {CANARY}b" for e in events)


def test_no_canary_anywhere_in_the_event_store_claims_and_source_keys_included(
        env: dict[str, str], hub: Hub) -> None:
    """Past the customer stream: contact-point claims, source-key rows, snapshots and
    the key table hold no personal data in clear either (keyed digests)."""
    settings = settings_mod.load(env)
    seed_canary(hub)
    for i in range(60):  # past the snapshot interval
        hub.execute(m.LogCall(call_id=f"snap-{i}", from_number="+442079460123",
                              summary=f"again {CANARY}"))
    needles = [CANARY.encode(), CANARY.lower().encode(), b"442079460123", b"2079460123"]
    if settings.event_store_kind == "postgres":
        with psycopg.connect(settings.event_store) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname='public'")]
            dump = b"".join(
                str(row).encode() for t in tables
                for row in conn.execute(f'SELECT * FROM "{t}"'))
    else:
        hub.close()
        path = settings_mod.sqlite_path(settings.event_store)
        dump = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert len(dump) > 10_000
    found = [n for n in needles if n in dump]
    assert not found, f"{found} in clear in the event store"


def _stored_states(env: dict[str, str], hub: Hub, topic: str) -> list[bytes]:
    """The stored state of every event of ``topic``, read past the application."""
    settings = settings_mod.load(env)
    if settings.event_store_kind == "postgres":
        with psycopg.connect(settings.event_store) as conn:
            return [bytes(s) for (s,) in conn.execute(
                f"SELECT state FROM {hub.recorder.events_table_name} "  # type: ignore[attr-defined]
                "WHERE topic = %s", (topic,))]
    return [n.state for n in hub.recorder.select_notifications(1, 100_000, topics=[topic])]


HELD_TOPIC = "domain.claims:HeldTouchpoint.Held"


def test_a_held_touchpoint_is_sealed_and_its_key_goes_when_it_is_assigned(
        env: dict[str, str], hub: Hub) -> None:
    hub.unknown_contacts = "triage"
    address = f"{CANARY.lower()}h@example.org"
    cmd = m.RecordEmail(message_id="<held-1@x>", from_address=address,
                        subject=f"Subj {CANARY}", occurred_at=T0)
    assert hub.execute(cmd).held_for_triage
    (state,) = _stored_states(env, hub, HELD_TOPIC)
    assert CANARY.encode() not in state and CANARY.lower().encode() not in state
    assert b'"_sealed"' in state
    [item] = hub.held_touchpoints()
    assert item.contact == f"email:{address}" and item.command["subject"] == f"Subj {CANARY}"

    cid = UUID(hub.execute(m.RegisterCustomer(name="Known later")).customer_id)
    assert hub.assign_held(item.source_key, cid).customer_id == str(cid)
    # Now only the customer's stream (under the customer's key) holds the touchpoint.
    assert keys_of(hub).is_erased(f"held:{item.id}")
    assert hub.held_touchpoints() == []
    assert hub.assign_held(item.source_key, cid).duplicate
    hub.close()
    fresh = make_hub(env)
    try:
        held = fresh.repository.get(item.id)
        assert held.erased and held.command == {} and held.assigned_to == str(cid)
        assert fresh.assign_held(item.source_key, cid).duplicate
    finally:
        fresh.close()


def test_erasure_reaches_held_items_and_blobs_of_the_person(env: dict[str, str],
                                                            hub: Hub) -> None:
    settings = settings_mod.load(env)
    blobs = _blobs(settings, hub)
    cid = seed_canary(hub)
    address = f"{CANARY.lower()}a@example.com"
    raw, pdf = f"raw mail of {CANARY}".encode(), f"%PDF {CANARY}".encode()
    raw_ref, pdf_ref = blobs.put(raw), blobs.put(pdf)
    hub.execute(m.RecordEmail(customer_id=UUID(cid), message_id="<with-raw@x>",
                              from_address=address, subject="raw", raw_ref=raw_ref,
                              attachments=[m.Attachment(sha256=pdf_ref, size=len(pdf),
                                                        content_type="application/pdf")]))
    fax = blobs.put(b"fax of " + CANARY.encode())
    hub.execute(m.RecordFax(customer_id=UUID(cid), fax_id="fx-1", document_sha256=fax))
    # Held before the person was known by this second address; and one of a stranger.
    hub.unknown_contacts = "triage"
    hub.execute(m.RecordEmail(message_id="<h-1@x>", from_address=f"second.{address}",
                              subject=f"held {CANARY}"))
    hub.execute(m.RecordEmail(message_id="<h-2@x>", from_address="stranger@example.org",
                              subject="not theirs"))
    hub.execute(m.AddContactPoint(customer_id=UUID(cid), contact=m.ContactPointIn(
        kind="email", value=f"second.{address}")))
    assert len(hub.held_touchpoints()) == 2

    report = Eraser(hub, keys_of(hub), blobs).erase(UUID(cid), "DSR-1", actor="privacy")
    assert report.blobs_shredded == 3 and report.held_erased == 1
    for ref in (raw_ref, pdf_ref, fax):
        assert not blobs.exists(ref) and keys_of(hub).is_erased(f"blob:{ref}")
    [left] = hub.held_touchpoints()
    assert left.contact == "email:stranger@example.org"
    states = b"".join(_stored_states(env, hub, HELD_TOPIC))
    assert CANARY.encode() not in states and CANARY.lower().encode() not in states
    # The same bytes stored again later (the person writes again) are kept afresh.
    again = blobs.put(raw)
    assert again != raw_ref and blobs.get(again) == raw
