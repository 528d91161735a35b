"""The write model's contract, run against every available event store.

``sqlite-reservation`` runs the EventStoreDB idempotency protocol (reservation
stream + scan + expected version) on SQLite, so that code path is exercised on
this machine even when no EventStoreDB server is reachable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from commands import messages as m
from commands.hub import ConflictError, CustomerNotFoundError, Hub
from commands.identity import InvalidContactPointError
from commands.provenance import provenances
from domain.customer import Customer
from domain.errors import ContactPointTakenError, CustomerMergedError
from tests.support.hubs import WRITE_STORES, make_hub, write_env
from tests.support.invariants import assert_no_duplicate_source_keys

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=WRITE_STORES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return write_env(str(request.param), tmp_path / "data")


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(env)
    yield h
    h.close()


def register(hub: Hub, name: str = "Ada Lovelace", **kw: object) -> UUID:
    cmd = m.RegisterCustomer(name=name, source_key=f"reg:{name}:{uuid4()}", **kw)  # type: ignore[arg-type]
    return UUID(hub.execute(cmd).customer_id)


def events(hub: Hub, customer_id: UUID) -> list[Customer.Event]:
    return list(hub.stream(customer_id))


def test_every_touchpoint_kind_lands_on_the_customers_stream(hub: Hub) -> None:
    cid = register(hub, contact_points=[{"kind": "phone", "value": "020 7946 0018"}])
    cmds: list[m.Touchpoint] = [
        m.LogCall(customer_id=cid, call_id="c1", from_number="+442079460018", outcome="missed",
                  occurred_at=T0),
        m.RecordCallStep(customer_id=cid, call_id="c2", step="ringing", sequence=1),
        m.RequestCallback(customer_id=cid, callback_id="cb1", number="+442079460018"),
        m.CompleteCallback(customer_id=cid, callback_id="cb1", call_id="c3"),
        m.RecordEmail(customer_id=cid, message_id="<m1@x>", from_address="ada@example.com",
                      subject="Hello", body_text="Hi"),
        m.RecordFax(customer_id=cid, fax_id="f1", pages=2, document_sha256="a" * 64),
        m.RecordVisit(customer_id=cid, visit_id="v1", visit_kind="field", staff="jonas",
                      occurred_at=T0 - timedelta(days=3)),
        m.RecordWebForm(customer_id=cid, form_name="contact", submission_id="s1",
                        fields={"message": "call me"}),
    ]
    for cmd in cmds:
        hub.execute(cmd)
    stream = events(hub, cid)
    kinds = [type(e).__name__ for e in stream]
    assert kinds[-8:] == ["CallLogged", "CallStepRecorded", "CallbackRequested",
                          "CallbackCompleted", "EmailRecorded", "FaxRecorded",
                          "VisitRecorded", "WebFormSubmitted"]
    assert [e.originator_version for e in stream] == list(range(len(stream)))
    visit = stream[-2]
    assert visit.occurred_at == T0 - timedelta(days=3)
    assert visit.recorded_at > visit.occurred_at
    assert visit.channel == "visit" and visit.source_key == "visit:v1"
    assert stream[-8].channel == "phone" and stream[-8].direction == "inbound"
    assert_no_duplicate_source_keys(stream)


def test_stream_is_named_after_the_customer(hub: Hub) -> None:
    cid = register(hub)
    aggregate_id = hub.naming.customer(cid)
    if hub.naming.prefixed:
        assert aggregate_id == f"customer-{cid}"
    else:
        assert aggregate_id == cid
    assert events(hub, cid)[0].originator_id == aggregate_id


def test_duplicate_delivery_records_one_event_and_returns_the_first_result(hub: Hub) -> None:
    cid = register(hub)
    cmd = m.LogCall(customer_id=cid, call_id="dup-1", duration_s=30)
    first = hub.execute(cmd)
    second = hub.execute(cmd)
    assert not first.duplicate and second.duplicate
    assert second.event_ids == first.event_ids
    assert second.versions == first.versions
    if first.positions[0] is not None and second.positions[0] is not None:
        assert second.positions == first.positions
    assert [e.source_key for e in events(hub, cid)].count("call:dup-1") == 1


def test_concurrent_duplicates_from_threads_record_one_event(hub: Hub) -> None:
    cid = register(hub)
    cmd = m.RecordEmail(customer_id=cid, message_id="<same@x>", from_address="ada@example.com")
    results = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        results.append(hub.execute(cmd))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    assert len({tuple(r.event_ids) for r in results}) == 1
    assert sum(not r.duplicate for r in results) <= 1
    assert [e.source_key for e in events(hub, cid)].count("email:<same@x>") == 1


def run_writers(env: dict[str, str], jobs: list[dict[str, object]]) -> list[subprocess.Popen[str]]:
    procs = []
    for job in jobs:
        payload = json.dumps({"env": env, **job})
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.support.writer", payload],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ))
    return procs


def test_concurrent_duplicates_from_processes_record_one_event(env: dict[str, str], hub: Hub) -> None:
    cid = register(hub)
    fields = {"customer_id": str(cid), "call_id": "proc-dup"}
    procs = run_writers(env, [{"commands": [{"kind": "call", "fields": fields}] * 3}] * 3)
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert [e.source_key for e in events(hub, cid)].count("call:proc-dup") == 1


def test_two_writers_on_one_customer_lose_nothing(env: dict[str, str], hub: Hub) -> None:
    cid = register(hub)
    n = 15
    jobs = [
        {"commands": [{"kind": "call", "fields": {"customer_id": str(cid), "call_id": f"w{w}-{i}"}}
                      for i in range(n)]}
        for w in range(2)
    ]
    procs = run_writers(env, jobs)

    def thread_writer(w: int) -> None:
        for i in range(n):
            hub.execute(m.LogCall(customer_id=cid, call_id=f"t{w}-{i}"))

    threads = [threading.Thread(target=thread_writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    keys = Counter(e.source_key for e in events(hub, cid))
    expected = {f"call:{p}{w}-{i}" for p in "wt" for w in range(2) for i in range(n)}
    assert expected <= set(keys)
    assert all(keys[k] == 1 for k in expected)


def test_crash_after_append_before_acknowledgement_then_retry_records_once(
    env: dict[str, str], hub: Hub
) -> None:
    cid = register(hub)
    fields = {"customer_id": str(cid), "call_id": "crash-1"}
    (proc,) = run_writers(env, [{"commands": [{"kind": "call", "fields": fields}],
                                 "die_after_append": True}])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -9 and out == ""  # killed before it could acknowledge
    retry = hub.execute(m.LogCall.model_validate(fields))
    assert retry.duplicate
    assert [e.source_key for e in events(hub, cid)].count("call:crash-1") == 1


def test_contact_point_belongs_to_one_customer_even_under_concurrent_claims(hub: Hub) -> None:
    errors: list[Exception] = []
    winners: list[str] = []
    barrier = threading.Barrier(4)

    def claim(i: int) -> None:
        barrier.wait()
        try:
            r = hub.execute(m.RegisterCustomer(
                name=f"P{i}", source_key=f"claim-{i}",
                contact_points=[{"kind": "email", "value": "Shared@Example.com"}],
            ))
            winners.append(r.customer_id)
        except ContactPointTakenError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(errors) == 3
    assert str(hub.find_by_contact("email", "shared@EXAMPLE.com")) == winners[0]


def email(address: str) -> dict[str, str]:
    return {"kind": "email", "value": address}


def test_a_batchs_claims_read_together_answer_as_each_read_alone(hub: Hub) -> None:
    """``known_owners`` reads every claim of a batch together (one query on the SQL
    stores): each answer is what a load of that claim alone gives, through claims,
    releases and re-claims, and a later read sees what changed in between."""
    a = register(hub, "A", contact_points=[email("a@example.com"),
                                           {"kind": "phone", "value": "+447700900001"}])
    b = register(hub, "B", contact_points=[email("b@example.com")])
    c = register(hub, "C", contact_points=[email("moved@example.com")])
    hub.execute(m.RemoveContactPoint(customer_id=b, contact=email("b@example.com")))
    hub.execute(m.RemoveContactPoint(customer_id=c, contact=email("moved@example.com")))
    hub.execute(m.AddContactPoint(customer_id=a, contact=email("moved@example.com")))
    batch: list[m.Touchpoint] = [
        m.RecordEmail(message_id="<1@x>", from_address="A@Example.com"),
        m.RecordEmail(message_id="<2@x>", from_address="b@example.com"),
        m.LogCall(call_id="k3", from_number="07700 900001"),
        m.RecordEmail(message_id="<4@x>", from_address="nobody@example.com"),
        m.RecordEmail(message_id="<5@x>", from_address="moved@example.com"),
        m.RecordEmail(message_id="<6@x>", from_address="a@example.com"),  # asked once
        m.LogCall(call_id="k7", customer_id=c, from_number="+447700900002"),  # named: no lookup
        m.LogCall(call_id="k8", from_number="12"),  # no number: left to customer_for's error
    ]
    known = hub.known_owners(batch)
    assert known.owners == {
        "email:a@example.com": str(a), "email:b@example.com": None,
        "tel:+447700900001": str(a), "email:nobody@example.com": None,
        "email:moved@example.com": str(a)}
    assert known.owners == {k: hub.context.claims.owner(k) for k in known.owners}
    assert [hub.customer_for(cmd, f"k{i}", known) for i, cmd in enumerate(batch[:3])] == [
        a, hub.naming.prospect("email:b@example.com"), a]
    # the prospect registered for b@ is noted for the rest of the batch, as a read would see
    assert known.owners["email:b@example.com"] == str(hub.naming.prospect("email:b@example.com"))
    with pytest.raises(InvalidContactPointError):
        hub.customer_for(batch[7], "k8", known)

    hub.execute(m.RemoveContactPoint(customer_id=a, contact=email("a@example.com")))
    again = hub.known_owners(batch[:2])  # read again: nothing remembered between reads
    assert again.owners == {"email:a@example.com": None,
                            "email:b@example.com": known.owners["email:b@example.com"]}


def test_a_contact_claimed_after_the_batchs_read_goes_to_its_new_owner(hub: Hub) -> None:
    """Between a batch's read and its decision another process registers the sender:
    the touchpoint goes to that customer, and no prospect is made for it."""
    late = m.RecordEmail(message_id="<late@x>", from_address="late@example.com")
    known = hub.known_owners([late])
    assert known.owners == {"email:late@example.com": None}
    owner = register(hub, "Late", contact_points=[email("late@example.com")])
    assert hub.customer_for(late, "email:<late@x>", known) == owner
    assert hub.execute(late).customer_id == str(owner)
    assert hub.find_by_contact("email", "late@example.com") == owner


def test_unknown_sender_becomes_one_prospect_even_when_two_arrive_at_once(hub: Hub) -> None:
    barrier = threading.Barrier(2)
    results = []

    def deliver(i: int) -> None:
        barrier.wait()
        results.append(hub.execute(m.LogCall(call_id=f"u{i}", from_number="07700 900123")))

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0].customer_id == results[1].customer_id
    customer = hub.customer(UUID(results[0].customer_id))
    assert customer.lifecycle_stage == "prospect"
    assert customer.contact_points == {"phone": ["+447700900123"]}
    assert str(hub.find_by_contact("phone", "+44 7700 900123")) == results[0].customer_id


def test_unknown_sender_is_held_for_triage_when_configured(env: dict[str, str]) -> None:
    h = make_hub(env)
    h.unknown_contacts = "triage"
    cmd = m.RecordEmail(message_id="<t@x>", from_address="stranger@example.org", subject="hi",
                        occurred_at=T0)
    held = h.execute(cmd)
    again = h.execute(cmd)
    assert held.held_for_triage and not held.duplicate
    assert again.held_for_triage and again.duplicate
    assert h.find_by_contact("email", "stranger@example.org") is None
    [item] = h.held_touchpoints()
    assert item.contact == "email:stranger@example.org" and item.command["subject"] == "hi"

    cid = register(h, "Known Later")
    result = h.assign_held(item.source_key, cid)
    assert result.customer_id == str(cid)
    recorded = [e for e in events(h, cid) if e.source_key == "email:<t@x>"]
    assert len(recorded) == 1 and recorded[0].occurred_at == T0
    assert h.held_touchpoints() == []
    assert h.assign_held(item.source_key, cid).duplicate
    h.close()


def test_merge_and_unmerge_are_events_and_lookups_follow(hub: Hub) -> None:
    a = register(hub, "A", contact_points=[{"kind": "email", "value": "a@example.com"}])
    b = register(hub, "B", contact_points=[{"kind": "email", "value": "b@example.com"}])
    hub.execute(m.LogCall(customer_id=a, call_id="before-merge"))
    hub.execute(m.MergeCustomers(source_id=a, target_id=b))
    hub.execute(m.MergeCustomers(source_id=a, target_id=b))  # retried: no second merge
    assert hub.find_by_contact("email", "a@example.com") == b
    after = hub.execute(m.RecordEmail(message_id="<after@x>", from_address="a@example.com"))
    assert after.customer_id == str(b)
    by_id = hub.execute(m.LogCall(customer_id=a, call_id="by-old-id"))
    assert by_id.customer_id == str(b)
    assert [type(e).__name__ for e in events(hub, a)].count("MergedInto") == 1
    assert "Absorbed" in [type(e).__name__ for e in events(hub, b)]
    with pytest.raises(CustomerMergedError):
        prov = next(provenances(m.AddNote(text="x"), "k", "system", "internal", hub.clock))
        hub.customer(a).add_note(prov, "x")

    hub.execute(m.UnmergeCustomer(source_id=a))
    assert hub.find_by_contact("email", "a@example.com") == a
    assert hub.customer(b).absorbed == []
    before = [e.source_key for e in events(hub, a)]
    assert "call:before-merge" in before  # nothing rewritten or deleted
    with pytest.raises(ConflictError):
        hub.execute(m.UnmergeCustomer(source_id=a, source_key="again"))


def test_a_merge_after_an_unmerge_merges_again_and_each_retry_stays_one(hub: Hub) -> None:
    a = register(hub, "A", contact_points=[{"kind": "email", "value": "a@example.com"}])
    b = register(hub, "B", contact_points=[{"kind": "email", "value": "b@example.com"}])
    for _ in range(2):  # merge, retry, unmerge; then the same pair again
        first = hub.execute(m.MergeCustomers(source_id=a, target_id=b))
        assert not first.duplicate
        assert hub.execute(m.MergeCustomers(source_id=a, target_id=b)).duplicate
        assert hub.find_by_contact("email", "a@example.com") == b
        hub.execute(m.UnmergeCustomer(source_id=a))
        assert hub.find_by_contact("email", "a@example.com") == a
    again = hub.execute(m.MergeCustomers(source_id=a, target_id=b))
    assert not again.duplicate and hub.customer(a).merged_into == str(b)
    kinds = [type(e).__name__ for e in events(hub, a)]
    assert (kinds.count("MergedInto"), kinds.count("Unmerged")) == (3, 2)
    assert [type(e).__name__ for e in events(hub, b)].count("Absorbed") == 3
    assert hub.customer(b).absorbed == [str(a)]


def test_commands_on_missing_customers_fail_cleanly(hub: Hub) -> None:
    with pytest.raises(CustomerNotFoundError):
        hub.execute(m.LogCall(customer_id=uuid4(), call_id="nobody"))


def test_long_streams_are_snapshotted(hub: Hub) -> None:
    cid = register(hub)
    for i in range(120):
        hub.execute(m.LogCall(customer_id=cid, call_id=f"long-{i}"))
    assert hub.snapshots is not None
    snaps = list(hub.snapshots.get(hub.naming.customer(cid), desc=True, limit=1))
    assert snaps and snaps[0].originator_version >= 100
    assert hub.customer(cid).touch_counts["phone"] == 120
