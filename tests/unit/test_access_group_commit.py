"""The read audit's group commit: shared writes, answers only after the write, bounded waits."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from projections.store import ReadStore
from replays.audit import access as access_log
from replays.audit.group_commit import GroupCommit, GroupCommitTimeout


def _entry(k: int) -> access_log.AccessEntry:
    return access_log.AccessEntry("2026-01-01T00:00:00+00:00", f"key-{k}", "agent",
                                  "GET /customers/{customer_id}/timeline", f"c-{k}", f"r-{k}",
                                  "127.0.0.1")


def test_a_loop_hands_its_items_over_at_the_end_of_its_turn_or_once_enough_are_queued(
) -> None:
    written: list[list[int]] = []
    started = threading.Event()

    def write(batch: list[int]) -> list[int]:
        started.set()
        written.append(list(batch))
        return [x * 10 for x in batch]

    commit: GroupCommit[int, int] = GroupCommit(write, name="test-writer", timeout_s=5,
                                                hand_over_at=4)
    seen: dict[str, bool] = {}

    def probe(name: str) -> None:  # runs in the turn that queued the items, after them
        seen[name] = started.wait(0.2)

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        few = [asyncio.ensure_future(commit.await_(k)) for k in range(3)]
        loop.call_soon(probe, "3 queued")
        answers = await asyncio.gather(*few)  # handed over when the turn ended
        started.clear()
        enough = [asyncio.ensure_future(commit.await_(k)) for k in range(3, 7)]
        loop.call_soon(probe, "4 queued")
        return answers + await asyncio.gather(*enough)

    try:
        assert asyncio.run(main()) == [k * 10 for k in range(7)]
    finally:
        commit.close()
    assert seen == {"3 queued": False, "4 queued": True}
    assert written == [[0, 1, 2], [3, 4, 5, 6]]


def test_items_queued_during_a_write_share_the_next_write_and_none_is_answered_before_it(
) -> None:
    written: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def write(batch: list[int]) -> list[int]:
        started.set()
        release.wait(5)
        written.append(list(batch))
        return [x * 10 for x in batch]

    commit: GroupCommit[int, int] = GroupCommit(write, name="test-writer", timeout_s=5)

    async def main() -> list[int]:
        first = asyncio.ensure_future(commit.await_(0))
        assert await asyncio.to_thread(started.wait, 5)  # its turn ended: handed over
        waiting = [first] + [asyncio.ensure_future(commit.await_(k)) for k in range(1, 20)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiting)  # nothing answered before the write
        release.set()
        return list(await asyncio.gather(*waiting))

    try:
        assert asyncio.run(main()) == [k * 10 for k in range(20)]
    finally:
        commit.close()
    assert written == [[0], list(range(1, 20))]  # the 19 queued during a write: one write


def test_a_failed_write_fails_every_waiter_of_its_batch_and_the_next_batch_is_tried() -> None:
    calls: list[list[str]] = []
    busy, release = threading.Event(), threading.Event()

    def write(batch: list[str]) -> list[None]:
        calls.append(list(batch))
        if batch == ["hold"]:  # keeps the writer busy while the next batch gathers
            busy.set()
            release.wait(5)
        if any(item.startswith("bad") for item in batch):
            raise OSError("disk full")
        return [None] * len(batch)

    errors: list[BaseException] = []
    commit: GroupCommit[str, None] = GroupCommit(write, name="test-writer", timeout_s=5,
                                                 on_error=errors.append)

    async def main() -> None:
        hold = asyncio.ensure_future(commit.await_("hold"))
        assert await asyncio.to_thread(busy.wait, 5)
        # Queued while a write runs, so both go in the next one (an item goes to the
        # writer at once: had it been idle, "bad-a" could have been written alone).
        batch = [asyncio.ensure_future(commit.await_(x)) for x in ("bad-a", "b")]
        await asyncio.sleep(0.05)
        release.set()
        first = await asyncio.gather(*batch, return_exceptions=True)
        assert [type(x) for x in first] == [OSError, OSError]
        assert await hold is None
        assert await commit.await_("c") is None

    try:
        asyncio.run(main())
        with pytest.raises(OSError):
            commit.wait("bad-d")
        assert commit.wait("e") is None
    finally:
        commit.close()
    assert calls == [["hold"], ["bad-a", "b"], ["c"], ["bad-d"], ["e"]]
    assert [str(e) for e in errors] == ["disk full", "disk full"]


def test_a_waiter_gives_up_after_the_timeout_from_a_loop_and_from_a_thread() -> None:
    release = threading.Event()
    commit: GroupCommit[int, None] = GroupCommit(
        lambda batch: (release.wait(5), [None] * len(batch))[1], name="test-writer",
        timeout_s=0.1)

    async def main() -> None:
        with pytest.raises(GroupCommitTimeout):
            await commit.await_(1)

    try:
        asyncio.run(main())
        with pytest.raises(GroupCommitTimeout):
            commit.wait(2)
    finally:
        release.set()
        commit.close()


def test_the_recorder_chains_records_across_batches_and_across_recorders(tmp_path: Path) -> None:
    store = ReadStore(f"sqlite:///{tmp_path / 'read.db'}")
    one, other = access_log.AccessRecorder(store), access_log.AccessRecorder(store)

    async def burst(recorder: access_log.AccessRecorder, first: int) -> None:
        await asyncio.gather(*(recorder.arecord(_entry(k)) for k in range(first, first + 10)))

    try:
        asyncio.run(burst(one, 0))
        other.record(_entry(100))  # another writer appends: one's remembered head is stale
        asyncio.run(burst(one, 10))
        one.record(_entry(200))
    finally:
        one.close()
        other.close()
    db = store.connect()
    try:
        found = access_log.records(db)
        assert [r.seq for r in found] == list(range(1, 23))
        assert access_log.verify_chain(db) == []
    finally:
        db.close()


def test_a_record_that_cannot_be_written_raises_access_log_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    recorder = access_log.AccessRecorder(ReadStore(f"sqlite:///{blocker / 'read.db'}"))
    try:
        with pytest.raises(access_log.AccessLogError):
            recorder.record(_entry(1))
        with pytest.raises(access_log.AccessLogError):
            asyncio.run(recorder.arecord(_entry(2)))
    finally:
        recorder.close()


def test_a_records_bytes_and_hash_are_those_of_sorted_compact_json() -> None:
    # The hand-written canonical form must be byte for byte the json.dumps one records
    # were hashed with before (their chains must still verify): escapes, non-ASCII,
    # U+2028, astral characters; and a hash pinned from the json.dumps code.
    import json

    odd = ['c-"1"\\\n\u2028😀', "key-é", "\x00\x1f", "</script>", ""]
    for k, text in enumerate(odd):
        fields = ["2026-01-01T00:00:00.5+00:00", "key-1", "agent", "GET /x", "c", "r", "::1"]
        fields[k % 7] = text
        entry = access_log.AccessEntry(*fields)
        expected = json.dumps({**entry._asdict(), "previous": access_log.GENESIS},
                              sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert access_log.canonical(entry, access_log.GENESIS) == expected.encode("utf-8")
    pinned = access_log.AccessEntry("2026-01-01T00:00:00.5+00:00", "key-é", "agent",
                                    "GET /customers/{customer_id}/timeline",
                                    'c-"1"\\\n\u2028😀', "r-1", "::1")
    assert access_log.chain_hash(pinned, access_log.GENESIS) == (
        "6ed3cb3bf4d3ad6fcb769055f478cf03c6ce1ec01b9e9004e6b5f6e9b5ae277d")
