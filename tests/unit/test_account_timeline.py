"""The account timeline is the union of its contacts' timelines over their periods, plus
the account's own events — whatever the order links and touchpoints arrive in, whatever
the batch size, with merges and date corrections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.accounts import Account
from domain.customer import Customer
from projections import registry
from projections.accounts.view import AccountsView
from projections.engine import Worker
from projections.events import us
from projections.store import ReadStore
from projections.timeline.view import TimelineFilter, TimelineView
from tests.support.readside import ListSource, Story, call_fields

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _prov(story: Story, at: datetime | None = None) -> dict[str, Any]:
    p = story.prov(at=at)
    return {"event_id": p.event_id, "occurred_at": p.occurred_at, "actor": "tester",
            "key_digest": p.source_key}


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


scenario = st.fixed_dictionaries({
    "people": st.integers(2, 4),
    "touches": st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1000)), min_size=4,
                        max_size=30),
    # (person, join minute, stay minutes or None for still there, arrives after touch #)
    "links": st.lists(st.tuples(st.integers(0, 3), st.integers(0, 900),
                                st.none() | st.integers(1, 1000), st.integers(0, 30)),
                      min_size=1, max_size=5),
    "merge": st.none() | st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 30)),
    "correct": st.none() | st.tuples(st.integers(0, 29), st.integers(0, 1000)),
    "batch": st.integers(1, 40),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=scenario)
def test_account_timeline_is_the_union_of_its_contacts_timelines_over_their_periods(
        tmp_path: Path, s: dict[str, Any]) -> None:
    story = Story(T0)
    people = [story.register(f"P{i}") for i in range(s["people"])]
    account = Account.open(uuid4(), _prov(story), name="Acme")
    source = ListSource()
    for p in people:
        for e in p.collect_events():
            source.append(e)
    for e in account.collect_events():
        source.append(e)  # type: ignore[arg-type]

    periods: dict[str, list[tuple[datetime, datetime | None]]] = {}
    touch_events: list[Customer.Event] = []
    arrivals = len(s["touches"]) + 1
    pending_links = [(p, j, stay, n % arrivals) for p, j, stay, n in s["links"]]
    merged: tuple[int, int] | None = None
    for n, (who, minute) in enumerate([*s["touches"], (None, None)]):
        for link in [lk for lk in pending_links if lk[3] == n]:
            person, join, stay, _ = link
            cid = str(people[person % len(people)].id)
            joined = _at(join)
            left = None if stay is None else _at(join + stay)
            if any(old_left is None or joined < old_left for _, old_left in periods.get(cid, [])):
                continue  # the domain refuses overlapping periods
            link_id = str(uuid4())
            account.join(_prov(story), link_id, cid, "buyer", joined)
            if left is not None:
                account.leave(_prov(story), cid, left)
            periods.setdefault(cid, []).append((joined, left))
            for e in account.collect_events():
                source.append(e)  # type: ignore[arg-type]
        if s["merge"] is not None and s["merge"][2] % arrivals == n and merged is None:
            a, b = s["merge"][0] % len(people), s["merge"][1] % len(people)
            if a != b:
                people[a].merge_into(story.prov(), str(people[b].id))
                merged = (a, b)
                for e in people[a].collect_events():
                    source.append(e)
        if who is None:
            continue
        person = people[who % len(people)]
        if person.merged_into is not None:
            person = people[merged[1]]  # type: ignore[index]  # commands follow merges
        story.touch(person, Customer.CallLogged, "phone", at=_at(minute),
                    **call_fields(f"c{n}"))
        for e in person.collect_events():
            source.append(e)
            touch_events.append(e)
    if s["correct"] is not None and touch_events:
        index, minute = s["correct"]
        target = touch_events[index % len(touch_events)]
        owner = next(p for p in people if p.id == target.originator_id)
        if owner.merged_into is None and target.occurred_at != _at(minute):
            owner.correct_touchpoint(story.prov(), target, occurred_at=_at(minute), changes={},
                                     reason="clock", now=_at(10_000), max_skew=timedelta(1),
                                     history=[e for e in touch_events
                                              if e.originator_id == owner.id])
            for e in owner.collect_events():
                source.append(e)

    store = ReadStore(f"sqlite:///{tmp_path / f'read-{uuid4()}.db'}")
    db = store.connect()
    try:
        Worker(db, source, [(registry.get("timeline"), None), (registry.get("accounts"), None)],
               batch=s["batch"]).catch_up()
    finally:
        db.close()
    timeline, accounts = TimelineView(store), AccountsView(store)
    got = {i["position"] for i in accounts.page(account.account_id, limit=200).items}
    want = {i["position"] for i in accounts.page(account.account_id, limit=200).items
            if i["customer_id"] is None}  # the account's own events
    assert len(want) == 1 + sum(1 + (left is not None) for ps in periods.values()
                                for _, left in ps)
    for cid, ps in periods.items():
        for joined, left in ps:
            where = TimelineFilter(since_us=us(joined), until_us=us(left) if left else None)
            want |= {i["position"] for i in _own_group_page(timeline, cid, where)}
    assert got == want


def _own_group_page(timeline: TimelineView, cid: str, where: TimelineFilter) -> list[Any]:
    """A person's timeline as the person's own group shows it (the person and everyone merged
    into them), even if the person was merged away since."""
    from projections.customers import group

    members = timeline.run(lambda db, t: group(db, t.customer, cid))
    items: list[Any] = []
    for member in members:
        items += [i for i in timeline.page(member, limit=200, where=where).items
                  if i["customer_id"] == member]
    return items
