"""``replay sla``: four past cases judged under the current policy and a new one, against
figures worked out by hand (Berlin office hours, 08:00-18:00 CET, November 2026), as of
Wednesday 18 November 16:00 CET."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from commands import messages as m
from commands import service as sc
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from replays.sla import what_if
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.settings.service import read_sla_file

NEW_POLICY = """
[policy.standard]
warning_share = 0.8
[policy.standard.targets]
urgent = { first_response_min = 30, resolution_min = 150 }
high = { first_response_min = 60, resolution_min = 720 }
normal = { first_response_min = 120, resolution_min = 2000 }
low = { first_response_min = 480, resolution_min = 2880 }
"""


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def seed(hub: object, cid: UUID) -> dict[str, UUID]:
    run = hub.execute  # type: ignore[attr-defined]
    ids = {k: uuid4() for k in "ABCD"}

    def open_(k: str, at: str, priority: str, channel: str = "email") -> None:
        run(sc.OpenCase(customer_id=cid, case_id=ids[k], category="billing", subject=k,
                        priority=priority, channel=channel, occurred_at=z(at)))

    def reply(k: str, at: str) -> None:
        run(sc.AddCaseNote(customer_id=cid, case_id=ids[k], text="on it", visibility="shared",
                           occurred_at=z(at)))

    def resolve(k: str, at: str) -> None:
        run(sc.ResolveCase(customer_id=cid, case_id=ids[k], resolution_code="done",
                           occurred_at=z(at)))

    # A: normal, Mon 09:00 CET; answered after 180 min; resolved Tue 12:00 (9h + 4h = 780)
    open_("A", "2026-11-16T08:00", "normal")
    reply("A", "2026-11-16T11:00")
    resolve("A", "2026-11-17T11:00")
    # B: normal, answered after 60 min; resolved Wed 15:00 (9h + 10h + 7h = 1560)
    open_("B", "2026-11-16T08:00", "normal")
    reply("B", "2026-11-16T09:00")
    resolve("B", "2026-11-18T14:00")
    # C: high, Tue 15:00, answered after 30 min, open: 3h + 8h = 660 min by Wed 16:00
    open_("C", "2026-11-17T14:00", "high")
    reply("C", "2026-11-17T14:30")
    # D: urgent phone call Wed 14:00 (answered live), open: 120 min by Wed 16:00
    open_("D", "2026-11-18T13:00", "urgent", channel="phone")
    return ids


def test_what_if_matches_the_hand_computed_figures(sqlite_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    hub = make_hub(sqlite_env)
    try:
        cid = UUID(hub.execute(m.RegisterCustomer(name="Ada", source_key="r",
                                                  occurred_at=z("2026-11-01T00:00"))).customer_id)
        ids = seed(hub, cid)
        policy = tmp_path / "new.toml"
        policy.write_text(NEW_POLICY)
        source = Dependencies(settings_mod.load(sqlite_env), hub=hub).event_source()
        result = what_if(source, config_from_mapping(DEFAULT_CONFIG), read_sla_file(policy),
                         z("2026-11-01T00:00"), z("2026-12-01T00:00"), z("2026-11-18T15:00"))
    finally:
        hub.close()
    # current: B late on resolution (1560 > 1440), C late (660 > 480); A and D fine
    assert (result.current.cases, result.current.breached, result.current.at_risk) == (4, 2, 0)
    assert (result.current.first_response_breached, result.current.resolution_breached) == (0, 2)
    # new: A answered late (180 > 120); C at risk (576 <= 660 < 720); D at risk (120 >= 120)
    assert (result.new.cases, result.new.breached, result.new.at_risk) == (4, 1, 2)
    assert (result.new.first_response_breached, result.new.resolution_breached) == (1, 0)
    # same calendar: the same business minutes (first responses 0, 30, 60, 180; resolutions
    # 780 and 1560)
    for figures in (result.current, result.new):
        assert figures.first_response_median_min == 45
        assert figures.resolution_median_min == 1170
    changed = {UUID(c["case_id"]): (c["current"], c["new"]) for c in result.changed}
    assert changed == {ids["A"]: ("ok", "breached"), ids["B"]: ("breached", "ok"),
                       ids["C"]: ("breached", "at_risk"), ids["D"]: ("ok", "at_risk")}
