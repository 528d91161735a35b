"""Accounts and data quality over the real write model and the demo data, on SQLite and
PostgreSQL: hierarchy, periods, the account timeline, duplicate suggestions (exactly the
planted pairs), accept and reject, completeness, and rebuild equality."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from commands import marketing as mk
from commands import messages as m
from commands import quality as q
from commands.hub import Hub
from projections import registry
from projections.accounts.view import AccountsView
from projections.engine import Worker
from projections.quality.view import QualityView
from projections.store import ReadStore
from projections.timeline.view import TimelineFilter, TimelineView
from replays.rebuild import rebuild
from touchstream import demo, demo_accounts
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies

CUSTOMERS = 40


def _catch_up(read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    db = store.connect()
    try:
        source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
        Worker(db, source, [(p, None) for p in registry.select(
            ["timeline", "accounts", "quality"])], batch=50).catch_up()
    finally:
        db.close()


def test_demo_accounts_read_the_same_on_every_store(read_env: dict[str, str],
                                                    hub: Hub) -> None:
    plan = demo.demo_plan(CUSTOMERS, 2)
    demo.seed(hub, plan)
    store = Dependencies(settings_mod.load(read_env)).read_store
    _catch_up(read_env, hub, store)
    accounts, timeline, quality = AccountsView(store), TimelineView(store), QualityView(store)

    # Hierarchy and periods.
    listed, _ = accounts.directory(limit=200)
    child = next(a for a in listed if a["parent_id"] is not None)
    detail = accounts.detail(child["account_id"])
    assert detail is not None and detail["ancestors"][0]["account_id"] == child["parent_id"]
    parent = accounts.detail(child["parent_id"])
    assert child["account_id"] in {c["account_id"] for c in parent["children"]}  # type: ignore[index]
    moved = next(a for a in listed if any(c["left_at"] for c in
                                          accounts.detail(a["account_id"])["contacts"]))  # type: ignore[index]

    # The account timeline: its own events and its contacts' inside their periods.
    account = accounts.detail(moved["account_id"])
    assert account is not None
    page = accounts.page(moved["account_id"], limit=200)
    got = {i["position"] for i in page.items if i["customer_id"]}
    want: set[int] = set()
    for c in account["contacts"]:
        where = TimelineFilter(since_us=_us(c["joined_at"]),
                               until_us=_us(c["left_at"]) if c["left_at"] else None)
        want |= {i["position"] for i in timeline.page(c["customer_id"], limit=200,
                                                      where=where).items}
    assert got == want and got
    kinds = {i["kind"] for i in page.items if i["customer_id"] is None}
    assert {"account_opened", "account_contact_joined", "account_contact_left"} <= kinds
    channel = next(i["channel"] for i in page.items if i["customer_id"])
    only = accounts.page(moved["account_id"], where=TimelineFilter(channels=(channel,)))
    assert only.items and all(i["channel"] == channel for i in only.items)
    assert len(only.items) < len(page.items)

    # Duplicates: exactly the planted pairs.
    planted = demo_accounts.planted_pairs(plan.commands, 1)
    found = quality.duplicates(limit=500)
    suggested = {(p["kind"], p["first_id"], p["second_id"]) for p in found["pairs"]}
    assert suggested == planted and len(planted) >= 4
    customer_pairs = sorted(p for p in planted if p[0] == "customer")
    _, first, second = customer_pairs[0]
    hub.execute(q.RejectDuplicate(first_id=UUID(first), second_id=UUID(second)))
    assert hub.execute(q.RejectDuplicate(first_id=UUID(second), second_id=UUID(first))).duplicate
    _, dup, survivor = customer_pairs[1]
    hub.execute(q.AcceptDuplicate(duplicate_id=UUID(dup), survivor_id=UUID(survivor)))
    _catch_up(read_env, hub, store)
    left = {(p["kind"], p["first_id"], p["second_id"])
            for p in quality.duplicates(limit=500)["pairs"]}
    assert left == planted - set(customer_pairs[:2])
    assert timeline.resolve(dup).root == survivor  # type: ignore[union-attr]

    # Completeness: unusable points proved by events, per owner.
    report = quality.completeness(as_of=datetime(2026, 10, 1, tzinfo=UTC), months=6)
    totals = {k: sum(o.get(k, 0) for o in report["owners"].values())
              for k in ("customers", "unusable_contact_points", "not_reached", "accounts",
                        "accounts_no_owner")}
    assert totals["customers"] > 0 and totals["unusable_contact_points"] >= 1
    assert 0 < totals["not_reached"] < totals["customers"]
    consent = report["consent"]  # the demo's consent events, per customer
    assert consent["with_valid_consent"] > 0 and consent["withdrawn_or_expired"] > 0
    assert consent["with_valid_consent"] + consent["without_valid_consent"] == \
        totals["customers"]
    assert sum(o.get("no_valid_consent", 0) for o in report["owners"].values()) == \
        consent["without_valid_consent"] >= consent["withdrawn_or_expired"]
    assert {u["reason"] for u in report["unusable"]} <= {"hard bounce", "call failed"}

    # Rebuilt from the log, both read models equal the live ones.
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    try:
        results = rebuild(store, source, registry.select(["accounts", "quality"]),
                          verify_only=True, batch=13)
    finally:
        source.close()
    assert all(r.comparison.equal for r in results), [
        d.describe() for r in results for d in r.comparison.differences]


def _us(moment: datetime) -> int:
    from projections.events import us

    return us(moment)


def test_completeness_reads_consent_on_the_day_and_through_merges(
        read_env: dict[str, str], hub: Hub, store: ReadStore) -> None:
    """A merged-in duplicate's consent counts for its survivor; a withdrawn and an expired
    one are not valid; a rebuild agrees."""
    given = datetime(2026, 9, 1, tzinfo=UTC)
    ids = {n: UUID(hub.execute(m.RegisterCustomer(name=n, source_key=f"c-{n}",
                                                  occurred_at=given)).customer_id)
           for n in ("dup", "survivor", "withdrew", "expired", "never")}
    for who, expires in (("dup", None), ("withdrew", None),
                         ("expired", datetime(2026, 9, 15, tzinfo=UTC))):
        hub.execute(mk.GiveConsent(customer_id=ids[who], consent_channel="email",
                                   purpose="marketing", evidence_kind="form-submission",
                                   evidence_id=f"form-{who}", expires_at=expires,
                                   occurred_at=given))
    hub.execute(mk.WithdrawConsent(customer_id=ids["withdrew"], consent_channel="email",
                                   purpose="marketing", occurred_at=given))
    hub.execute(m.MergeCustomers(source_id=ids["dup"], target_id=ids["survivor"]))
    _catch_up(read_env, hub, store)
    quality = QualityView(store)
    assert quality.completeness(as_of=datetime(2026, 10, 1, tzinfo=UTC))["consent"] == {
        "with_valid_consent": 1, "without_valid_consent": 3, "withdrawn_or_expired": 2}
    # before the expiry, the expiring consent was valid
    assert quality.completeness(as_of=datetime(2026, 9, 10, tzinfo=UTC))["consent"][
        "with_valid_consent"] == 2
    source = Dependencies(settings_mod.load(read_env), hub=hub).event_source()
    (result,) = rebuild(store, source, [registry.get("quality")], verify_only=True)
    assert result.comparison.equal, [d.describe() for d in result.comparison.differences]
