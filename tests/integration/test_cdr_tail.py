"""Tailing Master.csv into the hub: checkpoint, partial last line, rotation, dupes, quarantine."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.phone.cdr import CdrOptions
from channels.phone.cdr_tail import CdrTailer, CheckpointFile, Quarantine
from commands.bulk import BulkImporter
from commands.hub import Hub
from domain.customer import Customer
from tests.support.phone import sqlite_hub

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"
ROW = ('"","02079460018","100","from-pstn","","SIP/trunk-{n}","SIP/201-{n}","Dial","SIP/201",'
       '"2026-11-24 14:{n:02d}:00","2026-11-24 14:{n:02d}:05","2026-11-24 14:{n:02d}:35",35,30,'
       '"ANSWERED","DOCUMENTATION","row.{n}",""\n')


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = sqlite_hub(tmp_path)
    yield h
    h.close()


def tailer(hub: Hub, path: Path, tmp_path: Path, messages: list[str]) -> CdrTailer:
    return CdrTailer(path, BulkImporter(hub).import_history, CheckpointFile(tmp_path / "cp.json"),
                     Quarantine(tmp_path / "quarantine.jsonl"),
                     CdrOptions(timezone=ZoneInfo("UTC")), report=messages.append)


def calls(hub: Hub, number: str = "+442079460018") -> list[Customer.CallLogged]:
    cid = hub.find_by_contact("phone", number)
    return [] if cid is None else [e for e in hub.stream(cid)
                                   if isinstance(e, Customer.CallLogged)]


def test_fixture_file_records_good_rows_quarantines_bad_and_defers_the_torn_line(
    hub: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    shutil.copy(FIXTURES / "Master.csv", path)
    messages: list[str] = []
    stats = tailer(hub, path, tmp_path, messages).run_once()
    assert (stats.rows, stats.recorded, stats.malformed) == (5, 4, 1)
    assert stats.deferred_bytes > 0
    assert any("malformed" in msg and "columns" in msg for msg in messages)
    (entry,) = [json.loads(x) for x in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    assert "SIP/trunk-00000006" in __import__("base64").b64decode(entry["raw_base64"]).decode()
    assert [c.outcome for c in calls(hub)] == ["answered", "busy"]
    # The checkpoint stops before the torn line…
    cp = CheckpointFile(tmp_path / "cp.json").load()
    assert cp is not None and cp.offset == path.stat().st_size - stats.deferred_bytes
    # …which is recorded once the PBX finishes writing it.
    with open(path, "a") as fh:
        fh.write('30",30,0,"NO ANSWER","DOCUMENTATION","torn.1",""\n')
    again = tailer(hub, path, tmp_path, messages).run_once()
    assert (again.rows, again.recorded, again.duplicates, again.deferred_bytes) == (1, 1, 0, 0)
    assert [c.call_id for c in calls(hub)][-1] == "torn.1"


def test_rerun_without_checkpoint_skips_every_row_as_a_duplicate(
    hub: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text("".join(ROW.format(n=n) for n in range(3)))
    tailer(hub, path, tmp_path, []).run_once()
    (tmp_path / "cp.json").unlink()
    stats = tailer(hub, path, tmp_path, []).run_once()
    assert (stats.recorded, stats.duplicates) == (0, 3)
    assert len(calls(hub)) == 3


def test_rotation_finishes_the_old_file_then_reads_the_new_one(
    hub: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(ROW.format(n=1))
    t = tailer(hub, path, tmp_path, messages := [])
    t.run_once()
    with open(path, "a") as fh:  # written after our last read, before the rotation
        fh.write(ROW.format(n=2))
    os.rename(path, tmp_path / "Master.csv.1")
    path.write_text(ROW.format(n=3))
    stats = t.run_once()
    assert stats.rotations == 1 and any("rotated" in msg for msg in messages)
    assert [c.call_id for c in calls(hub)] == ["row.1", "row.2", "row.3"]


def test_truncated_file_is_read_again_from_the_start_without_duplicates(
    hub: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(ROW.format(n=1) + ROW.format(n=2))
    t = tailer(hub, path, tmp_path, messages := [])
    t.run_once()
    with open(path, "w") as fh:  # copytruncate-style rotation keeps the inode
        fh.write(ROW.format(n=4))
    t.run_once()
    assert any("truncated" in msg for msg in messages)
    assert [c.call_id for c in calls(hub)] == ["row.1", "row.2", "row.4"]


def test_follow_picks_up_rows_appended_while_running(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(ROW.format(n=1))
    stop = threading.Event()
    t = tailer(hub, path, tmp_path, [])
    runner = threading.Thread(target=t.follow, args=(stop.is_set, 0.02))
    runner.start()
    try:
        with open(path, "a") as fh:
            fh.write(ROW.format(n=2)[:40])
            fh.flush()
            fh.write(ROW.format(n=2)[40:])
        for _ in range(500):
            if len(calls(hub)) == 2:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        runner.join(timeout=10)
    assert [c.call_id for c in calls(hub)] == ["row.1", "row.2"]


def test_row_the_hub_refuses_is_quarantined_not_dropped(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(ROW.format(n=1).replace("02079460018", "anonymous"))
    stats = tailer(hub, path, tmp_path, messages := []).run_once()
    assert stats.rejected == 1 and any("rejected" in msg for msg in messages)
    assert (tmp_path / "quarantine.jsonl").read_text().count("\n") == 1


def test_checkpoint_never_passes_rows_that_were_not_recorded(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text("".join(ROW.format(n=n) for n in range(10)))
    importer = BulkImporter(hub)
    calls_made = 0

    def crash_on_second_batch(cmds):  # type: ignore[no-untyped-def]
        nonlocal calls_made
        calls_made += 1
        if calls_made == 2:
            raise OSError("disk went away")
        return importer.import_history(cmds)

    checkpoints = CheckpointFile(tmp_path / "cp.json")
    flaky = CdrTailer(path, crash_on_second_batch, checkpoints,
                      Quarantine(tmp_path / "q.jsonl"), CdrOptions(timezone=ZoneInfo("UTC")),
                      report=lambda _: None, batch=4)
    with pytest.raises(OSError):
        flaky.run_once()
    cp = checkpoints.load()
    assert cp is not None and cp.offset == len(ROW.format(n=0)) * 4  # first batch only
    stats = tailer(hub, path, tmp_path, []).run_once()
    assert (stats.recorded, stats.duplicates) == (6, 0)
    assert [c.call_id for c in calls(hub)] == [f"row.{n}" for n in range(10)]
