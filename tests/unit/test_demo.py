"""The demo data set: deterministic, realistic, every channel, safe to re-run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import phonenumbers

from commands import messages as m
from tests.conftest import store_env
from tests.support.hubs import make_hub
from touchstream import demo


def dumps(plan: demo.DemoPlan) -> list[str]:
    return [f"{type(c).__name__}:{c.model_dump_json()}" for c in plan.commands]


def test_same_seed_gives_the_same_commands_and_another_seed_does_not() -> None:
    assert dumps(demo.demo_plan(12, 2, seed=3)) == dumps(demo.demo_plan(12, 2, seed=3))
    assert dumps(demo.demo_plan(12, 2, seed=3)) != dumps(demo.demo_plan(12, 2, seed=4))


def test_a_smaller_data_set_is_a_prefix_of_a_larger_one() -> None:
    small = {c.source_key or c.default_source_key() for c in demo.demo_plan(5, 2).commands}
    large = {c.source_key or c.default_source_key() for c in demo.demo_plan(30, 2).commands}
    assert small - {None} <= large


def test_plan_covers_every_command_and_stays_in_the_past() -> None:
    plan = demo.demo_plan(60, 3)
    kinds = Counter(c.kind for c in plan.commands)
    every = {model.model_fields["kind"].default for model in m.TOUCHPOINT_COMMANDS.values()}
    assert every | {"register", "note", "lifecycle", "partner", "merge", "profile"} <= set(kinds)
    assert all(c.occurred_at is not None and c.occurred_at < demo.DEFAULT_UNTIL
               for c in plan.commands)
    span = max(c.occurred_at for c in plan.commands) - min(c.occurred_at for c in plan.commands)  # type: ignore[operator,type-var]
    assert span.days > 2 * 365


def test_contact_points_are_valid_and_reserved_for_fiction() -> None:
    plan = demo.demo_plan(200, 1)
    numbers, emails = [], []
    for cmd in plan.commands:
        if isinstance(cmd, m.RegisterCustomer):
            for p in cmd.contact_points:
                (emails if p.kind == "email" else numbers).append(p.value)
    assert len(numbers) == len(set(numbers)) and len(emails) == len(set(emails))
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)
    assert all(e.endswith(("@example.com", "@example.org")) for e in emails)


def test_seeding_twice_records_nothing_new_and_two_stores_get_the_same_events(
    tmp_path: Path,
) -> None:
    plan = demo.demo_plan(4, 1, seed=9)
    streams = []
    for name in ("a", "b"):
        hub = make_hub(store_env("sqlite", tmp_path / name))
        try:
            first = demo.seed(hub, plan)
            again = demo.seed(hub, plan)
            assert first.recorded_events > 0 and first.duplicates == 0
            assert again.recorded_events == 0 and again.duplicates == again.commands
            # Event ids are keyed per installation (never guessable from a source key),
            # so two stores agree on everything but them.
            streams.append([
                (e.source_key, e.occurred_at, type(e).__name__)  # type: ignore[attr-defined]
                for i in range(4) for e in hub.stream(demo.customer_id(9, i))
            ])
        finally:
            hub.close()
    assert streams[0] == streams[1] and len(streams[0]) > 4 * 3


def test_demo_numbers_are_valid_in_the_demo_region_and_leave_the_free_ranges_alone() -> None:
    slots = [*range(demo.MAX_CUSTOMERS), *(demo._POOL - 1 - i for i in range(demo.MAX_CUSTOMERS))]
    numbers = {demo.pool_number(s) for s in slots}
    assert not [n for n in numbers if n.startswith(demo.FREE_RANGES)]
    for number in list(numbers)[::97] + [demo.SWITCHBOARD, demo.FAX_LINE]:
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.region_code_for_number(parsed) == demo.REGION
    for free in demo.FREE_RANGES:
        assert phonenumbers.is_valid_number(phonenumbers.parse(free + "018"))


def test_seeding_reports_progress_per_command(tmp_path: Path) -> None:
    plan = demo.demo_plan(2, 1)
    calls: list[tuple[int, int]] = []
    hub = make_hub(store_env("sqlite", tmp_path / "data"))
    try:
        demo.seed(hub, plan, progress=lambda done, total: calls.append((done, total)))
    finally:
        hub.close()
    total = len(plan.commands)
    assert calls == [(i, total) for i in range(1, total + 1)]
