"""``touchstream dispatch`` and ``touchstream call-centre`` as subprocesses: transitions with
their exit codes, the signature stored from a file, the board as a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from uuid import uuid4

from tests.e2e.test_cli import Cli, fails

DAY = "2026-09-21"


def _at(hour: str) -> str:
    return f"{DAY}T{hour}:00+00:00"


def _setup(env: dict[str, str]) -> tuple[str, str, str, str]:
    """A customer, a technician, two scheduled work orders and two calls (through the hub:
    the CLI's own transitions are what is tested below)."""
    from datetime import datetime
    from uuid import UUID

    from commands import dispatch as cd
    from commands import messages as m
    from tests.support.hubs import make_hub

    hub = make_hub(env)
    try:
        cid, tech, wo, other = uuid4(), uuid4(), uuid4(), uuid4()
        hub.execute(m.RegisterCustomer(customer_id=cid, name="Ada"))
        hub.execute(cd.RegisterTechnician(technician_id=tech, handle="jonas",
                                          skills=["boiler"]))
        for order, start, end in ((wo, "09:00", "11:00"), (other, "10:00", "12:00")):
            hub.execute(cd.CreateWorkOrder(customer_id=cid, work_order_id=order,
                                           skill="boiler", address="1 Mill Lane, Leeds"))
            hub.execute(cd.ScheduleWorkOrder(
                customer_id=cid, work_order_id=order,
                window_start=datetime.fromisoformat(_at(start)),
                window_end=datetime.fromisoformat(_at(end))))
        for i, outcome in enumerate(("answered", "abandoned")):
            hub.execute(m.LogCall(customer_id=cid, call_id=f"C{i}", queue="support",
                                  outcome=outcome, wait_s=30, duration_s=90,  # type: ignore[arg-type]
                                  occurred_at=datetime.fromisoformat(_at(f"0{8 + i}:15"))))
        return str(cid), str(tech), str(wo), str(UUID(str(other)))
    finally:
        hub.close()


def test_dispatch_transitions_board_and_call_centre(tmp_path: Path) -> None:
    from tests.conftest import store_env

    cli = Cli(store_env("sqlite", tmp_path / "data"))
    cid, tech, wo, other = _setup(cli.env)
    step = ("--customer-id", cid, "--work-order-id", wo, "--technician-id", tech)
    cli.ok("dispatch", "assign", *step)
    fails(cli, 3, "overlaps", "dispatch", "assign", "--customer-id", cid,
          "--work-order-id", other, "--technician-id", tech)
    fails(cli, 4, "no technician", "dispatch", "assign", "--customer-id", cid,
          "--work-order-id", other, "--technician-id", str(uuid4()))
    fails(cli, 2, "window_end must be after", "dispatch", "schedule", "--customer-id", cid,
          "--work-order-id", other, "--window-start", _at("12:00"), "--window-end", _at("11:00"))
    cli.ok("dispatch", "accept", *step)
    cli.ok("dispatch", "arrive", *step, "--occurred-at", _at("09:10"))
    bad = tmp_path / "sig.gif"
    bad.write_bytes(b"GIF89a")
    fails(cli, 2, "not a PNG or JPEG", "dispatch", "done", *step, "--minutes-spent", "60",
          "--signature", str(bad))
    signature = tmp_path / "sig.png"
    signature.write_bytes(b"\x89PNG\r\n\x1a\nsigned")
    (done,) = cli.ok("dispatch", "done", *step, "--minutes-spent", "60", "--part", "valve=2",
                     "--signature", str(signature), "--occurred-at", _at("10:10"))
    assert done["event_ids"]

    board = cli("dispatch", "board", "--from", DAY, "--days", "1", "--now", _at("13:00"),
                "--json")
    assert board.returncode == 0, board.stderr
    found = json.loads(board.stdout)
    (day,) = next(t for t in found["technicians"] if t["handle"] == "jonas")["days"]
    assert day["worked_minutes"] == 60 and day["orders"][0]["stage"] == "done"
    assert [o["work_order_id"] for o in found["unassigned"]] == [other]
    assert found["overdue"] == 1  # the unassigned one, its window over at 13:00
    table = cli("dispatch", "board", "--from", DAY, "--days", "1", "--now", _at("13:00"),
                "--quiet")
    assert "jonas" in table.stdout and "(unassigned)" in table.stdout and "overdue" in table.stdout
    rows = list(csv.DictReader(io.StringIO(cli("dispatch", "late", "--now", _at("13:00"),
                                                "--csv").stdout)))
    assert [(r["work_order_id"], r["overdue"]) for r in rows] == [(other, "True")]
    shown = json.loads(cli("dispatch", "show", wo, "--json").stdout)
    assert [h["action"] for h in shown["history"]] == [
        "created", "scheduled", "assigned", "accepted", "arrived", "done"]
    assert shown["parts"] == [{"part": "valve", "quantity": 2}]
    assert "1 Mill Lane, Leeds" in cli("dispatch", "orders", cid, "--quiet").stdout

    figures = json.loads(cli("call-centre", "--from", _at("00:00"), "--to", _at("23:00"),
                             "--json").stdout)
    assert [(f["bucket"][11:16], f["offered"], f["answered"], f["abandoned"])
            for f in figures] == [("08:00", 1, 1, 0), ("09:00", 1, 0, 1)]
    daily = cli("call-centre", "--from", _at("00:00"), "--to", _at("23:00"), "--bucket", "day",
                "--quiet")
    assert "support" in daily.stdout and "50.0%" in daily.stdout
