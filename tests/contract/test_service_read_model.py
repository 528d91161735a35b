"""The service read model over the real write model on SQLite and PostgreSQL: the queue,
a case in detail, statistics, suggestions, erasure, and a rebuild equal to the live model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from commands import messages as m
from commands import service as sc
from commands.hub import Hub
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections import registry
from projections.engine import Worker
from projections.service.view import ServiceView
from projections.store import ReadStore
from replays.rebuild import rebuild
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.demo_service import service_plan

UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
CONFIG = config_from_mapping(DEFAULT_CONFIG)


def catch_up(env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    try:
        source = Dependencies(settings_mod.load(env), hub=hub).event_source()
        Worker(db, source, [(registry.get("service"), None)], batch=25).catch_up()
    finally:
        db.close()


def test_queue_detail_statistics_and_rebuild(read_env: dict[str, str], hub: Hub) -> None:
    store = Dependencies(settings_mod.load(read_env)).read_store
    people = [UUID(hub.execute(m.RegisterCustomer(
        name=f"C{i}", source_key=f"reg{i}",
        contact_points=[m.ContactPointIn(kind="email", value=f"c{i}@example.com")],
        occurred_at=UNTIL - timedelta(days=400))).customer_id) for i in range(12)]
    for cmd in service_plan(people, 3, UNTIL):
        hub.execute(cmd)
    # a case opened from an email, joined by the reply; another email is only suggested
    first = hub.execute(m.RecordEmail(message_id="<q@x>", direction="inbound",
                                      from_address="c0@example.com", occurred_at=UNTIL))
    case = uuid4()
    hub.execute(sc.OpenCase(customer_id=people[0], case_id=case, category="billing",
                            subject="Invoice", origin_event_id=UUID(first.event_ids[0]),
                            occurred_at=UNTIL))
    reply = hub.execute(m.RecordEmail(message_id="<r@x>", in_reply_to="<q@x>",
                                      references=["<q@x>"], direction="inbound",
                                      from_address="c0@example.com",
                                      occurred_at=UNTIL + timedelta(hours=1)))
    other = hub.execute(m.RecordEmail(message_id="<n@x>", direction="inbound",
                                      from_address="c0@example.com",
                                      occurred_at=UNTIL + timedelta(hours=2)))
    catch_up(read_env, hub, store)
    view = ServiceView(store, CONFIG)
    as_of = UNTIL + timedelta(hours=3)

    detail = view.case(str(case), as_of)
    assert detail is not None and detail["channel"] == "email" and detail["touchpoints"] == 2
    kinds = [s["kind"] for s in detail["steps"]]
    assert kinds == ["CaseOpened", "CaseTouchpointLinked"]
    assert detail["steps"][1]["touchpoint_event_id"] == reply.event_ids[0]
    assert [t["name"] for t in detail["timers"]] == ["first_response", "resolution"]
    mine = view.customer_cases(str(people[0]))
    assert {s["touchpoint_event_id"] for s in mine["suggestions"]} == {other.event_ids[0]}

    queue = view.queue(as_of, limit=500)
    assert queue["total"] == len(queue["items"]) > 0
    states = {r["sla_state"] for r in queue["items"]}
    assert "breached" in states  # open demo cases weeks old
    assert sum(w["open"] for w in queue["workload"]) == queue["total"]

    stats = view.statistics(UNTIL - timedelta(days=90), UNTIL + timedelta(days=1), "month",
                            as_of)
    total = sum(b["cases"] for b in stats["items"])
    assert total == len(list(view.run(lambda db, t: db.all(f"SELECT case_id FROM {t.case}"))))
    breach = [b["breach_rate"] for b in stats["items"] if b["cases"]]
    assert any(r and r > 0 for r in breach)
    assert any(b["csat"]["answers"] for b in stats["items"])

    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    (result,) = rebuild(store, source, [registry.get("service")], verify_only=True, batch=7)
    assert result.comparison.equal, [d.describe() for d in result.comparison.differences]


def test_erasure_redacts_the_cases_and_a_rebuild_equals_live(read_env: dict[str, str]) -> None:
    from touchstream.bootstrap import bootstrap

    deps = bootstrap(read_env)
    try:
        hub = deps.hub
        cid = UUID(hub.execute(m.RegisterCustomer(name="Ada", source_key="r1")).customer_id)
        case = uuid4()
        ids = {"customer_id": cid, "case_id": case}
        hub.execute(sc.OpenCase(**ids, category="billing", subject="secret-subject",
                                channel="phone"))
        hub.execute(sc.AddCaseNote(**ids, text="secret-note", visibility="internal"))
        hub.execute(sc.ResolveCase(**ids, resolution_code="fixed"))
        hub.execute(sc.RecordSatisfaction(**ids, score=5, comment="secret-comment"))
        store = deps.read_store
        catch_up(read_env, hub, store)
        view = ServiceView(store, CONFIG)
        before = view.case(str(case), UNTIL)
        assert before is not None and before["subject"] == "secret-subject"
        assert before["first_contact"] is True  # answered live on the phone, no reopen
        deps.eraser.erase(cid, "ticket 7", "admin")
        catch_up(read_env, hub, store)
        after = view.case(str(case), UNTIL)
        assert after is not None and after["subject"] is None and after["csat_comment"] is None
        assert "secret" not in str(after) and after["csat_score"] == 5
        source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
        (result,) = rebuild(store, source, [registry.get("service")], verify_only=True)
        assert result.comparison.equal, [d.describe() for d in result.comparison.differences]
    finally:
        deps.close()


def test_suggestions_follow_cases_opened_and_moved_in_the_same_batch(
        read_env: dict[str, str], hub: Hub) -> None:
    """A batch keeps its customers' cases in memory for the suggestions: what one event per
    batch reads from the table (the live model here), a single batch of the whole log must
    give too (the rebuild), through an open, a wait, a resolve, a reopen and a close."""
    store = Dependencies(settings_mod.load(read_env)).read_store
    cid = UUID(hub.execute(m.RegisterCustomer(
        name="Ada", source_key="reg-ada",
        contact_points=[m.ContactPointIn(kind="email", value="ada@example.com")],
        occurred_at=UNTIL)).customer_id)
    at = [UNTIL + timedelta(minutes=k) for k in range(1, 40)]
    mails: list[str] = []

    def mail() -> None:
        n = len(mails)
        mails.append(hub.execute(m.RecordEmail(
            message_id=f"<s{n}@x>", direction="inbound", from_address="ada@example.com",
            occurred_at=at[n])).event_ids[0])

    billing, other = uuid4(), uuid4()
    mail()  # no case yet: no suggestion
    hub.execute(sc.OpenCase(customer_id=cid, case_id=billing, category="billing",
                            subject="Invoice", occurred_at=at[20]))
    mail()  # suggested, until billing is resolved (its suggestions go then)
    hub.execute(sc.ResolveCase(customer_id=cid, case_id=billing, resolution_code="fixed",
                               occurred_at=at[21]))
    mail()  # not suggested: resolved
    hub.execute(sc.ReopenCase(customer_id=cid, case_id=billing, occurred_at=at[22]))
    hub.execute(sc.OpenCase(customer_id=cid, case_id=other, category="delivery",
                            subject="Late", occurred_at=at[23]))
    mail()  # both suggested
    hub.execute(sc.WaitOnCustomer(customer_id=cid, case_id=billing, occurred_at=at[24]))
    mail()  # both: waiting counts as open
    hub.execute(sc.ResolveCase(customer_id=cid, case_id=other, resolution_code="fixed",
                               occurred_at=at[25]))
    mail()  # only billing
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    db = store.connect()
    try:
        Worker(db, source, [(registry.get("service"), None)], batch=1).catch_up()
    finally:
        db.close()
    view = ServiceView(store, CONFIG)
    suggested = set(view.run(lambda db, t: [
        tuple(r) for r in db.all(f"SELECT touchpoint_event_id, case_id FROM {t.suggestion}")]))
    assert suggested == {(mails[k], str(billing)) for k in (3, 4, 5)}
    (result,) = rebuild(store, source, [registry.get("service")], verify_only=True,
                        batch=10_000)
    assert result.comparison.equal, [d.describe() for d in result.comparison.differences]
