"""Group commit for webhooks: concurrent callbacks share one durable transaction.

A provider posts status callbacks for many calls at once; one transaction
(and one fsync) per callback bounds the hub by the disk. Requests hand their
command to one writer thread, which records whatever has queued up in one go
through the write model's batched path (``commands.bulk``: same source-key
dedup, same identity resolution) and then answers every waiting request.
A request is answered only after its event is durable; if the process dies
first, the provider never got its 2xx and retries.

A call step handed in with its ``CallPlace`` is also placed here, for the whole
batch at once, so a request needs no thread of its own before or after: the
customer its call was recorded on before (the call directory, one read for the
batch), else the owner of its number (the batch's claims, read together). Only a number nobody owns yet goes to a side thread, which registers
its prospect (a data key and a claim, each durable) and queues the step again:
such a registration never holds up the steps queued behind it. After the save
the directory learns the batch's calls in one write, before anyone is answered.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

from channels.phone.directory import CallDirectory
from commands import messages as m
from commands.bulk import BulkImporter, ImportResult
from commands.errors import CommandError
from commands.hub import Hub
from commands.touchpoints import KnownOwners
from domain.errors import DomainError


class CallNotKnownError(Exception):
    """A call step with no customer and no number, for a call never recorded here: the
    provider is asked to retry (its first step may be on its way)."""


@dataclass(frozen=True)
class CallPlace:
    """Where a call step's customer is found and noted: the call directory and the call."""

    directory: CallDirectory
    call_id: str


@dataclass
class _Item:
    cmd: m.Touchpoint
    future: Future[ImportResult]
    place: CallPlace | None = None
    placed: bool = False  # customer decided (or left to the batch): not placed again
    away: bool = False  # answered already, or with a registrar: not in this batch
    waiter: asyncio.Future[ImportResult] | None = None  # the request's, on its event loop


_STOP = None


class GroupCommit:
    """Records submitted touchpoints in batches of up to ``max_batch`` on one writer thread.

    Two threads in a pipeline: the placer takes what has queued up and places it
    (reads only), the writer records what the placer handed on. So the reads of one
    batch overlap the save (and its fsync) of the one before, as they did when each
    request placed its own step on a thread of its own."""

    def __init__(self, get_hub: Callable[[], Hub], max_batch: int = 200,
                 registrars: int = 4) -> None:
        self._get_hub = get_hub
        self._max_batch = max_batch
        self._registrars = registrars
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._placed: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        self._threads: tuple[threading.Thread, threading.Thread] | None = None
        self._lock = threading.Lock()
        self._registrar: ThreadPoolExecutor | None = None
        self._registering = 0  # steps with a side thread, queued again when it is done

    def submit(self, cmd: m.Touchpoint, place: CallPlace | None = None,
               waiter: asyncio.Future[ImportResult] | None = None) -> Future[ImportResult]:
        """Queue ``cmd``; the future resolves once it is recorded (or refused). With
        ``place``, a step without ``customer_id`` is placed first (see the module's text;
        ``CallNotKnownError`` when it cannot be) and its call noted in the directory.
        ``waiter`` (a future of the caller's event loop) is given the same outcome, all
        of a batch's waiters on a loop in one wake-up of that loop (``wait_for``)."""
        future: Future[ImportResult] = Future()
        if self._threads is None:
            self._start()
        self._queue.put(_Item(cmd, future, place, waiter=waiter))
        return future

    async def wait_for(self, cmd: m.Touchpoint, place: CallPlace | None = None) -> ImportResult:
        """``submit`` from an event loop, awaited. The writer answers a whole batch with
        one ``call_soon_threadsafe`` per loop instead of a wake-up (and a chained future)
        per request: that per-request hand-back was loop work done once per callback."""
        waiter: asyncio.Future[ImportResult] = asyncio.get_running_loop().create_future()
        self.submit(cmd, place, waiter=waiter)
        return await waiter

    def _start(self) -> None:
        with self._lock:
            if self._threads is None:
                self._threads = (
                    threading.Thread(target=self._run_placer, name="webhook-group-place",
                                     daemon=True),
                    threading.Thread(target=self._run_writer, name="webhook-group-commit",
                                     daemon=True))
                for thread in self._threads:
                    thread.start()

    def close(self) -> None:
        """Finish what is queued (and being registered), then stop both threads."""
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            self._queue.put(_STOP)
            for thread in threads:
                thread.join(timeout=30)

    def _run_placer(self) -> None:
        stopping = False
        while True:
            if stopping:
                with self._lock:
                    idle = self._registering == 0
                if idle and self._queue.empty():
                    break
                try:
                    first = self._queue.get(timeout=0.05)
                except queue.Empty:
                    continue
            else:
                first = self._queue.get()
            if first is _STOP:
                stopping = True
                continue
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                ready = self._place(self._get_hub(), batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
                for item in batch:
                    if not item.away:
                        item.future.set_exception(exc)
                _deliver(batch)
                continue
            _deliver(batch)  # those answered here (a call not known)
            if ready:
                self._placed.put(ready)
        self._placed.put(_STOP)
        if self._registrar is not None:
            self._registrar.shutdown(wait=True)
            self._registrar = None

    def _run_writer(self) -> None:
        stop = False
        while not stop:
            first = self._placed.get()
            if first is _STOP:
                return
            batch = list(first)
            while len(batch) < self._max_batch:
                try:
                    more = self._placed.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch += more
            self._record(batch)

    def _record(self, batch: list[_Item]) -> None:
        try:
            results = BulkImporter(self._get_hub()).import_history([i.cmd for i in batch])
            self._note_calls(batch, results)
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            _deliver(batch)
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():  # not refused by ``_note_calls``
                item.future.set_result(result)
        _deliver(batch)

    # ------------------------------------------------------------ placing call steps
    def _place(self, hub: Hub, batch: list[_Item]) -> list[_Item]:
        """The items to record now, each call step with its customer where one is known;
        the others answered (``CallNotKnownError``) or handed to a registrar."""
        unplaced = [i for i in batch
                    if i.place is not None and not i.placed and i.cmd.customer_id is None]
        if not unplaced:
            return batch
        by_directory: dict[int, tuple[CallDirectory, set[str]]] = {}
        for item in unplaced:
            assert item.place is not None
            entry = by_directory.setdefault(id(item.place.directory),
                                            (item.place.directory, set()))
            entry[1].add(item.place.call_id)
        known = {key: directory.customers_of(calls)
                 for key, (directory, calls) in by_directory.items()}
        numbered: list[_Item] = []  # not in a directory: found by their number's claim
        for item in unplaced:
            assert item.place is not None
            item.placed = True
            customer = known[id(item.place.directory)].get(item.place.call_id)
            if customer is not None:
                item.cmd = item.cmd.model_copy(update={"customer_id": customer})
            elif item.cmd.counterpart() is None:
                item.away = True
                item.future.set_exception(CallNotKnownError(
                    f"call {item.place.call_id} is not known yet and carries no number"))
            else:
                numbered.append(item)
        if numbered:
            # Every number's claim in one read (one statement on the SQL stores), not one
            # transaction per number: ~0.4 ms of CPU per callback on PostgreSQL went there.
            claims = hub.known_owners(item.cmd for item in numbered)
            for item in numbered:
                owner = _owner(claims, item.cmd.counterpart())  # type: ignore[arg-type]
                if owner is None:  # nobody owns the number yet: register off this thread
                    item.away = True
                    self._register(hub, item)
                elif not isinstance(owner, _Undecided):
                    item.cmd = item.cmd.model_copy(update={"customer_id": owner})
        return [i for i in batch if not i.away]

    def _register(self, hub: Hub, item: _Item) -> None:
        with self._lock:
            self._registering += 1
            if self._registrar is None:
                self._registrar = ThreadPoolExecutor(self._registrars,
                                                     thread_name_prefix="webhook-new-caller")
            registrar = self._registrar
        registrar.submit(self._registered, hub, item)

    def _registered(self, hub: Hub, item: _Item) -> None:
        """The number's customer found, or its prospect registered, then the step queued
        again; whatever cannot be decided here (held for triage, a refusal) is left to the
        batch, which decides it exactly as one command would."""
        try:
            customer = hub.customer_for(item.cmd, hub.source_key_of(item.cmd))
        except (CommandError, DomainError):
            pass
        except Exception as exc:  # noqa: BLE001 - the waiting request must hear of it
            item.future.set_exception(exc)
            _deliver([item])
        else:
            item.cmd = item.cmd.model_copy(update={"customer_id": customer})
        try:
            if not item.future.done():
                item.away = False
                self._queue.put(item)
        finally:
            with self._lock:
                self._registering -= 1

    def _note_calls(self, items: list[_Item], results: list[ImportResult]) -> None:
        """Tell each directory the calls this batch recorded (one write each) before
        anyone is answered: a later step without a number then finds its customer."""
        notes: dict[int, tuple[CallDirectory, dict[str, str], list[_Item]]] = {}
        for item, result in zip(items, results, strict=True):
            recorded = result.recorded
            if (item.place is None or recorded is None or not recorded.customer_id
                    or recorded.held_for_triage
                    or item.place.directory.remembers(item.place.call_id,
                                                      recorded.customer_id)):
                continue
            entry = notes.setdefault(id(item.place.directory),
                                     (item.place.directory, {}, []))
            entry[1].setdefault(item.place.call_id, recorded.customer_id)
            entry[2].append(item)
        for directory, calls, waiting in notes.values():
            try:
                directory.remember_many(list(calls.items()))
            except Exception as exc:  # noqa: BLE001 - recorded, not noted: a retry notes it
                for item in waiting:
                    item.future.set_exception(exc)


def _deliver(items: list[_Item]) -> None:
    """Hand the outcomes of the done ones among ``items`` to their waiters: one
    ``call_soon_threadsafe`` per event loop (a waiter given its outcome already, or
    cancelled, is left alone by ``_settle``)."""
    by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[_Item]]] = {}
    for item in items:
        if item.waiter is not None and item.future.done():
            loop = item.waiter.get_loop()
            by_loop.setdefault(id(loop), (loop, []))[1].append(item)
    for loop, done in by_loop.values():
        try:
            loop.call_soon_threadsafe(_settle, done)
        except RuntimeError:  # the loop was closed: nobody waits any more
            pass


def _settle(items: list[_Item]) -> None:
    """On the waiters' loop: each waiter gets its item's outcome."""
    for item in items:
        waiter = item.waiter
        if waiter is None or waiter.done():
            continue
        exc = item.future.exception()
        if exc is None:
            waiter.set_result(item.future.result())
        else:
            waiter.set_exception(exc)


class _Undecided:
    """A number whose owner cannot be told here (not a valid number…)."""


_UNDECIDED = _Undecided()


def _owner(claims: KnownOwners, counterpart: tuple[str, str]) -> UUID | _Undecided | None:
    """The customer owning a number or address by its claim, as read for the batch
    (``Hub.known_owners``); None when nobody does; ``_UNDECIDED`` when it cannot be told
    (not a valid number: the batch then refuses it as one command would, with the same
    error)."""
    contact = claims.contacts.get(counterpart)
    if contact is None:
        return _UNDECIDED
    owner = claims.owners.get(contact[0])
    return UUID(owner) if owner is not None else None
