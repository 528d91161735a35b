"""Group commit: items from many threads and coroutines share one durable write.

The idea of ``channels/phone/group_commit.py`` (webhooks), made general so the read
audit can use it from the event loop too (the layers keep channels and replays apart,
so each has its own; this one takes any ``write``):

- One writer thread takes everything queued, writes it with one ``write(batch)`` call
  (one transaction, one fsync), and only then answers the waiters. Items that arrive
  while a write is in flight wait for the next one, so the batch grows with the load
  and a disk's fsync is paid once per batch, not once per item.
- A thread waits on a ``concurrent.futures.Future`` (``submit``/``wait``).
- A coroutine (``await_``) costs its event loop no thread and no wake-up of its own:
  its item is handed to the writer once ``hand_over_at`` items are queued, or at the
  end of the loop turn, whichever comes first, and the writer answers each loop once
  per batch (one ``call_soon_threadsafe``), not once per item. The items of one loop
  turn share one timeout timer.
  - Why not at once: on a fast disk (a commit ~0.5 ms) an item handed over at once
    was mostly written alone (1.9 items a batch under ``bench timeline``'s load), and
    each batch costs a commit, a wake-up of the writer (whose taking the GIL from
    the busy loop forces a thread switch) and a wake-up of the loop: ~0.2 ms of CPU
    a request on the writer alone, most of it in the kernel (perf). With 8 (the
    default): 6.5–6.8 a batch, the writer ~0.1 ms a request (4: 4–5 a batch,
    0.15 ms; 12: 8 a batch, 0.09 ms, but the longest waits for the writer).
  - Why not only at the end of the turn: under load a turn of uvicorn serving a
    dozen requests lasts ~15 ms, which every record then waited before its write
    began, and the loop sat idle while a whole turn's batch was written (a fifth to
    a third of the audited timeline's throughput, stop 11).
- Nobody waits forever: after ``timeout_s`` the waiter gets ``GroupCommitTimeout``
  (its item may still be written later; the caller treats it as not written).

Measured with the read audit (``touchstream bench timeline``): per-item hand-offs to
a thread and per-item loop wake-ups cost more CPU than the append itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitTimeout(Exception):
    """Raised to a waiter whose item was not written within the timeout."""


class _Loop:
    """A coroutine's waiters for one event loop: (item, asyncio future) pairs."""

    __slots__ = ("loop", "timer", "unanswered", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: list[asyncio.Future[Any]] = []
        self.unanswered = 0
        self.timer: asyncio.TimerHandle | None = None


class GroupCommit(Generic[T, R]):
    """Writes submitted items in batches of up to ``max_batch`` on one writer thread.

    ``write(batch)`` returns one result per item (or raises: every item of the batch
    then gets that exception). ``on_error`` is called on the writer thread after a
    failed write (to drop a broken connection, say).
    """

    def __init__(self, write: Callable[[list[T]], Sequence[R]], *, name: str,
                 max_batch: int = 512, timeout_s: float | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 hand_over_at: int = 8) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._hand_over_at = max(1, hand_over_at)
        self.timeout_s = timeout_s
        self._on_error = on_error
        # (item, waiter): a concurrent Future, or the _Loop and the index of its future
        self._queue: list[tuple[T, Any]] = []
        #: how many of the queue's first entries the writer may take (the rest wait for
        #: their loop turn to end, or for more items to join them)
        self._released = 0
        # ``with self._lock`` on the hot path: a Condition's own __enter__ is a Python
        # call per item; the Condition shares the lock for the writer's waits.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._writer: threading.Thread | None = None
        #: the writer waits for items (set and cleared by the writer, under ``_lock``)
        self._idle = False
        self._closing = False
        #: each loop's group of the current turn (its waiters share one timeout timer)
        self._turn: dict[asyncio.AbstractEventLoop, _Loop] = {}

    # --- waiting from a thread ---------------------------------------------------------

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future resolves once it is written (or with the error)."""
        done: Future[R] = Future()
        self._enqueue((item, done), release=True)
        return done

    def wait(self, item: T) -> R:
        """Return once ``item`` is written; its error, or GroupCommitTimeout."""
        try:
            return self.submit(item).result(self.timeout_s)
        except FutureTimeout as exc:
            raise GroupCommitTimeout(f"not written within {self.timeout_s} s") from exc

    # --- waiting from a coroutine ------------------------------------------------------

    async def await_(self, item: T) -> R:
        """``wait`` for a coroutine: the event loop keeps serving while the item is written."""
        return await self.future(item)

    def future(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` from a coroutine; await the future (its result once written, its
        error, or GroupCommitTimeout). One coroutine frame less than ``await_`` on every
        resumption, for a caller that translates the errors itself."""
        loop = asyncio.get_running_loop()
        group = self._turn.get(loop)
        if group is None:  # the first item of this loop turn: the turn's items share a timer
            group = self._turn[loop] = _Loop(loop)
            if self.timeout_s is not None:
                group.timer = loop.call_later(self.timeout_s, expire, group.waiters,
                                              self.timeout_s)
            # Closed after the turn, handing what is still queued to the writer; its
            # answers (_settle, queued by the writer after this) run later still, so
            # they see every item of the turn counted.
            loop.call_soon(self._end_turn, loop)
        future: asyncio.Future[R] = loop.create_future()
        index = len(group.waiters)
        group.waiters.append(future)
        group.unanswered += 1
        self._enqueue((item, (group, index)), release=False)
        return future

    def _end_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._turn.pop(loop, None)
        with self._lock:
            self._release()

    # --- the writer --------------------------------------------------------------------

    def _enqueue(self, entry: tuple[T, Any], *, release: bool) -> None:
        with self._lock:
            # The writer clears ``_writer`` under this lock as it stops, so no item is
            # queued for a writer that has gone (and no ``is_alive()`` call per item).
            if self._writer is None:
                self._closing = False
                self._writer = threading.Thread(target=self._run, name=self._name,
                                                daemon=True)
                self._writer.start()
            self._queue.append(entry)
            if release or len(self._queue) - self._released >= self._hand_over_at:
                self._release()

    def _release(self) -> None:
        """Let the writer take everything queued (called holding ``_lock``). The writer is
        woken only if it waits: a writer busy writing looks at ``_released`` again, under
        this lock, before it waits (a notify then is a Python call for nothing)."""
        if self._released < len(self._queue):
            self._released = len(self._queue)
            if self._idle:
                self._wake.notify()

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException:
            with self._lock:  # died: the next item starts a new writer
                if self._writer is threading.current_thread():
                    self._writer = None
            raise

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self._released and not self._closing:
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                if self._closing:
                    self._released = len(self._queue)
                if not self._released:
                    if self._writer is threading.current_thread():
                        self._writer = None
                    return
                taken = min(self._released, self._max_batch)
                batch = self._queue[:taken]
                del self._queue[:taken]
                self._released -= taken
            try:
                results: Sequence[Any] = self._write([item for item, _ in batch])
                error: BaseException | None = None
            except Exception as exc:  # noqa: BLE001 — handed to every waiter of the batch
                results, error = (), exc
                if self._on_error is not None:
                    self._on_error(exc)
            self._answer(batch, results, error)

    @staticmethod
    def _answer(batch: list[tuple[T, Any]], results: Sequence[Any],
                error: BaseException | None) -> None:
        loops: dict[_Loop, list[tuple[int, Any]]] = {}
        for k, (_, waiter) in enumerate(batch):
            result = None if error is not None else results[k]
            if isinstance(waiter, Future):
                if error is not None:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(result)
            else:
                group, index = waiter
                loops.setdefault(group, []).append((index, result))
        for group, answers in loops.items():
            try:
                group.loop.call_soon_threadsafe(_settle, group, answers, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def close(self) -> None:
        """Write what is queued, then stop the writer (a later submit starts a new one)."""
        with self._lock:
            writer, self._closing = self._writer, True
            self._wake.notify()
        if writer is not None:
            writer.join()


def _settle(group: _Loop, answers: list[tuple[int, Any]], error: BaseException | None) -> None:
    for index, result in answers:
        future = group.waiters[index]
        if future.done():  # timed out (or its request was cancelled) meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    group.unanswered -= len(answers)
    if group.unanswered <= 0 and group.timer is not None:
        group.timer.cancel()


def expire(waiters: list[asyncio.Future[Any]], timeout_s: float) -> None:
    """Fail the waiters not answered yet with GroupCommitTimeout (a timer's callback)."""
    for future in waiters:
        if not future.done():
            future.set_exception(GroupCommitTimeout(f"not written within {timeout_s} s"))
