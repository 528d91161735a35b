"""The activity analytics read models over the real write model, on SQLite and PostgreSQL:
the demo's activity and service episodes counted as the commands say, a void taken out,
drill-down pages that add up, and a rebuild that equals the live models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from commands import messages as m
from commands import service as sc
from commands.hub import Hub
from domain.analytics import Window
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from projections import registry
from projections.channel_mix.view import ChannelMixView
from projections.engine import Worker
from projections.response_times.view import ResponseTimesView
from projections.satisfaction.view import SatisfactionView
from projections.store import ReadStore
from replays.rebuild import rebuild
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.demo_analytics import activity_plan
from touchstream.demo_service import service_plan

NAMES = ["channel_mix", "response_times", "satisfaction"]
UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
YEAR = Window(date(2025, 9, 1), date(2026, 10, 1), "month")


def _catch_up(read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    try:
        Worker(db, source, [(p, None) for p in registry.select(NAMES)], batch=9).catch_up()
    finally:
        db.close()
        source.close()


def test_activity_figures_match_the_commands_and_a_rebuild_equals_live(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    people = [UUID(hub.execute(m.RegisterCustomer(
        name=f"C{i}", source_key=f"reg{i}", occurred_at=UNTIL - timedelta(days=400)
    )).customer_id) for i in range(10)]
    activity = activity_plan(people, 5, UNTIL)
    service = service_plan(people, 5, UNTIL)
    recorded = [hub.execute(cmd) for cmd in [*activity, *service]]
    voided = next(r for c, r in zip(activity, recorded, strict=False)
                  if isinstance(c, m.LogCall) and c.direction == "inbound")
    hub.execute(m.VoidTouchpoint(customer_id=UUID(str(voided.customer_id)),
                                 event_id=UUID(voided.event_ids[0]), reason="test call"))
    _catch_up(read_env, hub, store)

    mix = ChannelMixView(store).mix(YEAR)
    assert mix["total"] == len(activity) - 1  # every episode's touchpoint, less the void
    inbound = sum(1 for c in activity if getattr(c, "direction", "") == "inbound") - 1
    assert sum(r["touchpoints"] for r in mix["rows"] if r["direction"] == "inbound") == inbound
    for split in ("queue", "stage"):
        cells = ChannelMixView(store).mix(YEAR, split)["rows"]
        assert sum(r["touchpoints"] for r in cells) == mix["total"]
        assert all(r["group"] for r in cells)

    times = ResponseTimesView(store, config_from_mapping(DEFAULT_CONFIG))
    rows = [r for r in times.times(YEAR)["rows"] if r["channel"] == "(all)"]
    assert sum(r["inbound"] for r in rows) == inbound
    answered = sum(r["answered"] for r in rows)
    assert 0 < answered < inbound  # some episodes are never answered
    assert all(r["median_business_s"] <= r["median_s"] for r in rows if r["answered"])
    pages, after = [], 0
    while True:  # the drill-down pages through every inbound touchpoint once
        page = times.events(YEAR, after=after, limit=7)
        pages += page
        if len(page) < 7:
            break
        after = page[-1]["position"]
    assert len({p["event_id"] for p in pages}) == inbound
    assert sum(1 for p in pages if p["detail"]["response_event_id"]) == answered

    csat = SatisfactionView(store).satisfaction(Window(date(2024, 10, 1), date(2026, 10, 1),
                                                       "month"))
    opened = [c for c in service if isinstance(c, sc.OpenCase)]
    assert sum(r["cases_opened"] for r in csat["rows"]) == len(opened)
    assert sum(r["complaints"] for r in csat["rows"]) == sum(
        1 for c in opened if c.case_kind == "complaint")
    assert sum(r["csat_answers"] for r in csat["rows"]) == sum(
        1 for c in service if isinstance(c, sc.RecordSatisfaction))

    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    try:
        results = rebuild(store, source, registry.select(NAMES), verify_only=True, batch=11)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def test_a_csat_answer_takes_the_queue_its_case_was_moved_to_in_the_same_batch(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    """Satisfaction keeps a batch's cases in memory: an answer after an assignment in the
    same batch (one batch of the whole log: the rebuild) carries the queue the case was
    moved to, as one event per batch (live, read from the table) does."""
    cid = UUID(hub.execute(m.RegisterCustomer(
        name="Ada", source_key="reg-ada", occurred_at=UNTIL - timedelta(days=3))).customer_id)
    case = UUID(int=7)
    at = UNTIL - timedelta(days=2)
    hub.execute(sc.OpenCase(customer_id=cid, case_id=case, category="billing", queue="front",
                            subject="Invoice", occurred_at=at))
    hub.execute(sc.AssignCase(customer_id=cid, case_id=case, queue="billing",
                              occurred_at=at + timedelta(hours=1)))
    hub.execute(sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="fixed",
                               occurred_at=at + timedelta(hours=2)))
    hub.execute(sc.RecordSatisfaction(customer_id=cid, case_id=case, score=4,
                                      occurred_at=at + timedelta(hours=3)))
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    db = store.connect()
    try:
        Worker(db, source, [(registry.get("satisfaction"), None)], batch=1).catch_up()
    finally:
        db.close()
    facts = SatisfactionView(store).run(lambda db, t: db.all(
        f"SELECT kind, queue FROM {t.fact} ORDER BY position"))
    assert [tuple(f) for f in facts] == [("case_opened", "front"), ("csat", "billing")]
    try:
        (result,) = rebuild(store, source, [registry.get("satisfaction")], verify_only=True,
                            batch=10_000)
    finally:
        source.close()
    assert result.comparison.equal, [d.describe() for d in result.comparison.differences]
