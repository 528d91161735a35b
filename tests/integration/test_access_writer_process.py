"""The read audit's writer process (``replays.audit.access_writer``): durable before the
answer, one unbroken chain beside other writers, refusals, a killed or stalled writer, and
a clean stop. Real processes and real stores (SQLite here; PostgreSQL where the suite's
server is up)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from projections.store import ReadStore
from replays.audit import access as access_log
from tests.conftest import store_env
from touchstream import settings as settings_mod


def _entry(k: int, customer: str = "c") -> access_log.AccessEntry:
    return access_log.AccessEntry(f"2026-01-01T00:00:{k % 60:02d}+00:00", f"key-{k % 3}",
                                  "agent", "GET /customers/{customer_id}/timeline",
                                  f"{customer}-{k % 5}", f"r-{k}", "127.0.0.1")


def _rows(store: ReadStore) -> list[access_log.AccessRecord]:
    db = store.connect()
    try:
        access_log.ensure_schema(db)
        assert access_log.verify_chain(db) == []
        return access_log.records(db, limit=100_000)
    finally:
        db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ReadStore:
    return ReadStore(settings_mod.load(store_env(request.param, tmp_path / "data")).read_store)


def test_concurrent_reads_are_durable_when_answered_and_form_one_chain_with_the_thread(
        store: ReadStore) -> None:
    recorder = access_log.AccessRecorder(store, process=True)
    answered: list[int] = []

    async def read(k: int) -> None:
        await recorder.arecord(_entry(k))
        answered.append(k)

    async def main() -> None:
        await asyncio.gather(*(read(k) for k in range(300)))
        # the writer thread (plain ``def`` routes, the CLI) appends to the same chain
        await asyncio.to_thread(recorder.record, _entry(1000))
        await asyncio.gather(*(read(k) for k in range(300, 400)))

    try:
        asyncio.run(main())
        rows = _rows(store)  # read while the writer process still runs: durable already
    finally:
        recorder.close()
    assert sorted(answered) == list(range(400))
    assert [r.seq for r in rows] == list(range(1, 402))
    assert sorted(r.entry.request_id for r in rows) == sorted(
        [f"r-{k}" for k in range(400)] + ["r-1000"])


def test_a_store_that_refuses_answers_every_reader_with_an_access_log_error(
        tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    recorder = access_log.AccessRecorder(ReadStore(f"sqlite:///{blocker / 'read.db'}"),
                                         process=True)

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(recorder.arecord(_entry(k)) for k in range(5)),
                                    return_exceptions=True)

    try:
        found = asyncio.run(main())
    finally:
        recorder.close()
    assert all(isinstance(e, access_log.AccessLogError) for e in found), found
    assert "could not be written" in str(found[0])


def test_a_killed_writer_fails_what_it_had_not_acknowledged_and_the_next_read_starts_anew(
        tmp_path: Path) -> None:
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    recorder = access_log.AccessRecorder(store, process=True, timeout_s=20)

    async def main() -> tuple[BaseException | None, int, int]:
        await recorder.arecord(_entry(0))
        first = recorder._channel().process
        os.kill(first.pid, signal.SIGSTOP)  # stalled: what is sent now stays unacknowledged
        waiting = asyncio.ensure_future(recorder.arecord(_entry(1)))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        os.kill(first.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(waiting, 10)
            error: BaseException | None = None
        except access_log.AccessLogError as exc:
            error = exc
        await recorder.arecord(_entry(2))
        return error, first.pid, recorder._channel().process.pid

    try:
        error, killed, now = asyncio.run(main())
    finally:
        recorder.close()
    assert error is not None and "stopped" in str(error)
    assert now != killed
    assert [r.entry.request_id for r in _rows(store)] == ["r-0", "r-2"]


def test_a_stalled_writer_refuses_the_read_after_the_timeout(tmp_path: Path) -> None:
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    recorder = access_log.AccessRecorder(store, process=True, timeout_s=0.5)

    async def main() -> tuple[str, float]:
        await recorder.arecord(_entry(0))
        writer = recorder._channel().process
        os.kill(writer.pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            await recorder.arecord(_entry(1))
        except access_log.AccessLogError as exc:
            return str(exc), time.monotonic() - started
        finally:
            os.kill(writer.pid, signal.SIGCONT)
        return "", 0.0

    try:
        reason, waited = asyncio.run(main())
    finally:
        recorder.close()
    assert "not written in time" in reason
    assert 0.4 < waited < 5


def test_close_writes_what_was_sent_and_the_writer_exits(tmp_path: Path) -> None:
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    recorder = access_log.AccessRecorder(store, process=True)

    async def main() -> int:
        await asyncio.gather(*(recorder.arecord(_entry(k)) for k in range(50)))
        return recorder._channel().process.pid

    pid = asyncio.run(main())
    channel = next(iter(recorder._channels.values()))
    recorder.close()
    assert channel.process.poll() == 0, "the writer exited cleanly"
    assert len(_rows(store)) == 50
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_each_event_loop_has_its_own_writer_and_a_closed_loops_writer_is_stopped(
        tmp_path: Path) -> None:
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    recorder = access_log.AccessRecorder(store, process=True)

    async def one(k: int) -> object:
        await recorder.arecord(_entry(k))
        return recorder._channel()

    try:
        first = asyncio.run(one(0))
        second = asyncio.run(one(1))  # a new loop: the first loop's writer is stopped
        assert first is not second
        assert first.process.wait(10) == 0
        assert len(recorder._channels) == 1
    finally:
        recorder.close()
    assert [r.entry.request_id for r in _rows(store)] == ["r-0", "r-1"]


def test_writers_of_closed_loops_are_stopped_when_another_recorder_is_made(
        tmp_path: Path) -> None:
    from touchstream.audit_wiring import access_recorder, close_access_recorders

    first_env = store_env("sqlite", tmp_path / "one")
    first = access_recorder(settings_mod.load(first_env))

    async def read(recorder: access_log.AccessRecorder) -> object:
        await recorder.arecord(_entry(0))
        return recorder._channel()

    try:
        channel = asyncio.run(read(first))  # the loop closes: its writer waits, idle
        assert channel.process.poll() is None
        access_recorder(settings_mod.load(store_env("sqlite", tmp_path / "two")))
        assert channel.process.wait(10) == 0
    finally:
        close_access_recorders()
