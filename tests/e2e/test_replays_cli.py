"""The analyst's workbench end to end: ``replay run`` (sandboxed, into Parquet/CSV/SQLite),
``projections add/remove`` (the same file as a live read model) and ``export events``."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from commands import messages as m
from tests.support.demo import T0, seed_demo
from tests.support.hubs import make_hub
from touchstream.cli import main

CALLS = '''"""Calls by queue."""
NAME = "calls_by_queue"
COLUMNS = {"day": "date", "queue": "text", "talk_s": "integer", "at": "timestamp",
           "answered": "boolean"}

def on_CallLogged(event, emit):
    emit(day=event.occurred_at.date(), queue=event.queue, talk_s=event.duration_s,
         at=event.occurred_at, answered=event.outcome == "answered")
'''


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    from tests.conftest import store_env

    env = store_env("sqlite", tmp_path_factory.mktemp("replay") / "data")
    hub = make_hub(env)
    ids = seed_demo(hub)
    for i in range(40):
        hub.execute(m.LogCall(customer_id=ids["bob" if i % 2 else "cy"],  # type: ignore[arg-type]
                              call_id=f"q{i}", queue="sales" if i % 3 else "support",
                              duration_s=60 + i, outcome="answered" if i % 4 else "abandoned",
                              occurred_at=T0 + timedelta(days=i)))
    return env, ids


@pytest.fixture
def env(book: tuple[dict[str, str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
        ) -> dict[str, str]:
    for k, v in book[0].items():
        monkeypatch.setenv(k, v)
    return book[0]


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_replay_writes_the_same_rows_to_every_format_deterministically(
        env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _file(tmp_path, "calls.py", CALLS)
    for out in ("a.csv", "b.csv", "c.parquet", "d.sqlite"):
        assert main(["replay", "run", spec, "--out", str(tmp_path / out)]) == 0
    summary = capsys.readouterr().out
    assert "46 rows" in summary and "log position" in summary  # 6 demo calls + 40
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with (tmp_path / "a.csv").open() as f:
        from_csv = list(csv.DictReader(f))
    assert len(from_csv) == 46 and from_csv[0].keys() >= {"position", "seq", "day", "answered"}
    parquet = duckdb.sql(f"SELECT position, queue, talk_s, answered, day FROM "
                         f"'{tmp_path / 'c.parquet'}' ORDER BY position").fetchall()
    lite = sqlite3.connect(tmp_path / "d.sqlite").execute(
        "SELECT position, queue, talk_s, answered, day FROM calls_by_queue ORDER BY position"
    ).fetchall()
    assert [(p, q, t) for p, q, t, _, _ in parquet] == [(p, q, t) for p, q, t, _, _ in lite]
    assert [str(d) for *_, d in parquet] == [d for *_, d in lite]
    assert sum(1 for r in parquet if r[1] == "support") == 14


def test_filters_select_by_occurrence_recording_and_customer(
        env: dict[str, str], book: tuple[dict[str, str], dict[str, str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    spec = _file(tmp_path, "calls.py", CALLS)
    out = tmp_path / "f.csv"
    first, last = (T0 + timedelta(days=10)).date(), (T0 + timedelta(days=19)).date()
    assert main(["replay", "run", spec, "--out", str(out), "--from", str(first),
                 "--until", str(last), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 10
    assert main(["replay", "run", spec, "--out", str(out), "--customers", book[1]["cy"],
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 20
    assert main(["replay", "run", spec, "--out", str(out), "--known-at", "2000-01-01T00:00:00Z",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 0


@pytest.mark.parametrize("body, refused", [
    ("    import commands.hub\n", "may not import 'commands.hub'"),
    ("    import socket\n    socket.create_connection(('127.0.0.1', 9))\n", "may not do 'socket"),
    ("    open(OUT, 'w').write('x')\n", "may not write files"),
    ("    raise KeyError('boom')\n", "KeyError: 'boom'"),
])
def test_a_handler_that_breaks_the_rules_or_fails_stops_the_run_and_writes_nothing(
        env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        body: str, refused: str) -> None:
    escaped = tmp_path / "escaped.txt"
    spec = _file(tmp_path, "bad.py", f'NAME = "bad"\nCOLUMNS = {{"x": "integer"}}\n'
                                     f'OUT = {str(escaped)!r}\n'
                                     f'def on_CallLogged(event, emit):\n{body}    emit(x=1)\n')
    out = tmp_path / "bad.csv"
    out.write_text("an earlier result\n")
    assert main(["replay", "run", spec, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert refused in err and "the handler failed on event" in err and "Traceback" in err
    assert out.read_text() == "an earlier result\n"  # untouched
    assert not escaped.exists()
    assert not list(tmp_path.glob(".bad.csv.partial-*"))


@pytest.mark.parametrize("text, message", [
    ("NAME = 'Bad Name'\nCOLUMNS = {'x': 'integer'}\ndef on_event(e, emit): pass\n", "NAME must"),
    ("NAME = 'x'\nCOLUMNS = {'x': 'money'}\ndef on_event(e, emit): pass\n", "has type 'money'"),
    ("NAME = 'x'\nCOLUMNS = {'x': 'integer'}\n", "define on_<EventClass>"),
    ("NAME = 'x'\nCOLUMNS = {'x': 'integer'\n", "line"),
])
def test_a_file_that_defines_no_valid_projection_is_a_usage_error(
        env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        text: str, message: str) -> None:
    spec = _file(tmp_path, "x.py", text)
    assert main(["replay", "run", spec, "--out", str(tmp_path / "x.csv")]) == 2
    assert message in capsys.readouterr().err
    assert main(["replay", "run", spec, "--out", str(tmp_path / "x.json")]) == 2


def test_the_same_file_live_gives_the_rows_of_the_one_off_replay_and_rebuilds_with_proof(
        env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _file(tmp_path, "calls.py", CALLS)
    assert main(["replay", "run", spec, "--out", str(tmp_path / "one-off.sqlite")]) == 0
    assert main(["projections", "add", spec]) == 0
    assert main(["projections", "add", spec]) == 0  # the same file again: nothing changes
    other = _file(tmp_path, "other.py", CALLS.replace("talk_s=event", "talk_s=1 + event"))
    assert main(["projections", "add", other]) == 3  # the name is taken by another file
    assert main(["projections", "rebuild", "analyst_calls_by_queue"]) == 0
    assert main(["projections", "rebuild", "analyst_calls_by_queue", "--verify-only"]) == 0
    assert "equal to live" in capsys.readouterr().out
    read = sqlite3.connect(Path(env["TOUCHSTREAM_DATA"]) / "read.db")
    gen = read.execute("SELECT generation FROM ts_projection WHERE name=? AND live=1",
                       ("analyst_calls_by_queue",)).fetchone()[0]
    live = read.execute(f"SELECT * FROM analyst_calls_by_queue_g{gen}_row "
                        "ORDER BY position, seq").fetchall()
    one_off = sqlite3.connect(tmp_path / "one-off.sqlite").execute(
        "SELECT * FROM calls_by_queue ORDER BY position, seq").fetchall()
    assert live == one_off and len(live) == 46
    assert main(["projections", "remove", "calls_by_queue"]) == 0
    assert main(["projections", "remove", "calls_by_queue"]) == 4
    assert not read.execute("SELECT name FROM sqlite_master WHERE name LIKE "
                            "'analyst_calls_by_queue%'").fetchall()


def test_the_parquet_export_reads_back_as_the_store_and_a_second_run_adds_only_new_events(
        env: dict[str, str], book: tuple[dict[str, str], dict[str, str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export"
    assert main(["export", "events", "--out", str(out), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    hub = make_hub(env)
    store = [(n.id, n.topic.rsplit(":", 1)[1]) for n in hub.recorder.select_notifications(1, 10**6)
             if n.topic.startswith("domain.customer:Customer.")]
    files = f"read_parquet('{out}/*/*.parquet', hive_partitioning=true)"
    got = duckdb.sql(f"SELECT position, type FROM {files} ORDER BY position").fetchall()
    assert got == store and first["events"] == len(store)
    hub.execute(m.LogCall(customer_id=book[1]["bob"], call_id="late-one",  # type: ignore[arg-type]
                          occurred_at=T0 - timedelta(days=400)))
    assert main(["export", "events", "--out", str(out), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["events"] == 1 and second["position_from"] == first["position_to"]
    [(count, distinct)] = duckdb.sql(f"SELECT count(*), count(DISTINCT position) FROM {files}"
                                     ).fetchall()
    assert count == distinct == len(store) + 1
    month = (T0 - timedelta(days=400)).strftime("%Y-%m")
    assert duckdb.sql(f"SELECT type FROM {files} WHERE month = '{month}'").fetchall() == [
        ("Customer.CallLogged",)]


def test_the_replay_benchmark_reports_its_ratio_rss_and_export_rate() -> None:
    import argparse

    from touchstream.bench import replay as replay_bench

    report = replay_bench.run(argparse.Namespace(store="sqlite", events=300, customers=3))
    figures = report["figures"]
    assert report["scenario"] == "replay" and figures["replay_rows"] == figures["events"]
    assert figures["replay_peak_rss_mb"] > 0 and figures["export_events_per_s"] > 0
    assert 0 < report["ratios"]["replay_vs_raw_read"]


def test_a_segment_selects_its_members_events_through_the_segments_view(
        env: dict[str, str], book: tuple[dict[str, str], dict[str, str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from uuid import uuid4

    from commands import marketing as cm

    hub = make_hub(env)
    try:
        hub.execute(cm.DefineSegment(segment_id=uuid4(), name="North partner",
                                     rule={"partner": "p-north"}))  # bob only
    finally:
        hub.close()
    spec, out = _file(tmp_path, "calls.py", CALLS), str(tmp_path / "s.csv")

    def rows(*flags: str) -> int:
        assert main(["replay", "run", spec, "--out", out, "--json", *flags]) == 0
        return int(json.loads(capsys.readouterr().out)["rows"])

    bob = rows("--customers", book[1]["bob"])
    assert bob >= 20 and rows("--segment", "North partner") == bob
    assert rows("--segment", "North partner", "--customers", book[1]["cy"]) == 0
    assert main(["replay", "run", spec, "--out", out, "--segment", "Nobody"]) == 4
    assert "no segment 'Nobody'" in capsys.readouterr().err
