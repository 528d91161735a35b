"""The read audit's writer in a process of its own, fed by the event loop without a thread.

Why: with the writer as a thread of the server (``AccessRecorder``'s ``GroupCommit``),
every batch made the writer take the GIL several times from the busy event loop (to
chain, hash and bind its rows, around each SQLite call, to answer), and each time the
loop stalled behind it. In paired runs of ``bench timeline``'s servers the loop's own CPU
a page rose 10–20% with the audit on, the writer thread adding ~0.065 ms a page; with
the writer in a process of its own, the loop's CPU a page rose ~2% (it only encodes a
batch and reads the acknowledgements) and the writing runs on the other core.

The protocol, over a socket pair (the child's end passed as a descriptor):

- parent → child: frames of a 4-byte big-endian length and a JSON array. The first
  frame is the configuration ``{"uri": …, "timeout_s": …}``; every later one is a batch
  of access entries (each the seven fields of ``AccessEntry`` in order), at most
  ``AccessRecorder.MAX_BATCH``.
- child → parent: one acknowledgement per batch, in order: ``k`` once the batch is
  durable, or ``e``, a 4-byte length and a UTF-8 reason if it could not be written.

The child appends every batch that has arrived by the time it is free in one
transaction (up to ``MAX_BATCH`` entries), so batches group-commit as with the thread,
and acknowledges each only after that commit. It remembers the chain's head between
commits; another writer appending meanwhile (a CLI read, another worker of
``touchstream serve --workers N``, a thread-side ``record``) is caught by the sequence
number's primary key (``access.append``). It exits when the parent's end closes (the
parent stopped or died), after writing what it has received.

A batch not acknowledged within ``timeout_s`` is refused to its readers (503); a child
that dies fails every batch it has not acknowledged, and the next read starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
from collections import deque
from typing import Any

import orjson

from replays.audit.group_commit import expire

FRAME = struct.Struct("!I")
ACK_OK = ord("k")
ACK_ERROR = ord("e")


# --- the child --------------------------------------------------------------------------

def _complete_frames(buf: bytearray) -> list[bytes]:
    """Take every complete frame off the front of ``buf``."""
    out: list[bytes] = []
    at = 0
    while len(buf) - at >= FRAME.size:
        (n,) = FRAME.unpack_from(buf, at)
        if len(buf) - at - FRAME.size < n:
            break
        out.append(bytes(buf[at + FRAME.size:at + FRAME.size + n]))
        at += FRAME.size + n
    del buf[:at]
    return out


def serve(sock: socket.socket) -> None:
    """The child's loop: configuration, then batches until the parent's end closes."""
    from projections.store import ReadStore
    from replays.audit import access

    buf = bytearray()
    pending: deque[list[Any]] = deque()  # decoded frames, in order

    def receive(block: bool) -> bool:
        """Read what has arrived (waiting for something if ``block``); False at EOF."""
        while True:
            try:
                data = sock.recv(1 << 16, 0 if block else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return True
            if not data:
                return False
            buf.extend(data)
            pending.extend(orjson.loads(f) for f in _complete_frames(buf))
            block = False

    open_ = True
    while not pending and open_:
        open_ = receive(True)
    if not pending:
        return
    conf: Any = pending.popleft()
    store = ReadStore(conf["uri"], timeout_s=int(conf["timeout_s"]))
    db: Any = None
    head: Any = None
    limit = access.AccessRecorder.MAX_BATCH
    while True:
        if not pending:
            if not open_:
                break
            open_ = receive(True)
            continue
        if open_:
            open_ = receive(False)  # batches that came meanwhile share this commit
        batches: list[list[Any]] = []
        rows = 0
        while pending and (not batches or rows + len(pending[0]) <= limit):
            batch = pending.popleft()
            batches.append(batch)
            rows += len(batch)
        entries = [access.AccessEntry(*r) for b in batches for r in b]
        try:
            if db is None:
                db = store.connect()
                access.ensure_schema(db)
            written = access.append(db, entries, after=head)
            head = (written[-1].seq, written[-1].hash)
            ack = bytes([ACK_OK]) * len(batches)
        except Exception as exc:  # noqa: BLE001 — told to the readers, who are refused
            head = None
            if db is not None:
                with contextlib.suppress(Exception):
                    db.close()
                db = None
            reason = f"{type(exc).__name__}: {exc}".encode()[:2000]
            ack = (bytes([ACK_ERROR]) + FRAME.pack(len(reason)) + reason) * len(batches)
        sock.sendall(ack)
    if db is not None:
        db.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(args[0]))
    try:
        serve(sock)
    finally:
        sock.close()
    return 0


# --- the parent ---------------------------------------------------------------------------

class WriterGone(Exception):
    """The writer process stopped before acknowledging a batch."""


class WriterRefused(Exception):
    """The writer process could not write a batch (its reason)."""


class Channel:
    """One event loop's connection to its writer process.

    ``submit(entry)`` returns an asyncio future settled once the entry is durable (or with
    ``WriterRefused`` / ``WriterGone`` / ``GroupCommitTimeout``, as the writer thread's). Entries of one loop turn go
    as one batch at the end of the turn, or as soon as ``hand_over_at`` are waiting; the
    acknowledgements are read by the loop (``add_reader``), one per batch.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, uri: str, *, timeout_s: float,
                 max_batch: int, hand_over_at: int) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self.hand_over_at = min(hand_over_at, max_batch)
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "replays.audit.access_writer", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        parent.setblocking(False)
        self.sock = parent
        self.alive = True
        self._out = bytearray()
        self._writing = False
        self._in = bytearray()
        #: batches sent and not yet acknowledged: (futures, timeout handle)
        self._sent: deque[tuple[list[asyncio.Future[None]], asyncio.TimerHandle]] = deque()
        self._batch: list[tuple[str, ...]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._frame(orjson.dumps({"uri": uri, "timeout_s": timeout_s}))
        loop.add_reader(parent, self._on_readable)

    # sending

    def submit(self, entry: tuple[str, ...]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        if not self.alive:
            future.set_exception(WriterGone("the access-log writer has stopped"))
            return future
        self._batch.append(entry)
        self._waiters.append(future)
        if len(self._batch) >= self.hand_over_at:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._batch or not self.alive:
            return
        batch, waiters = self._batch, self._waiters
        self._batch, self._waiters = [], []
        timer = self.loop.call_later(self.timeout_s, expire, waiters, self.timeout_s)
        self._sent.append((waiters, timer))
        self._frame(orjson.dumps(batch))

    def _frame(self, payload: bytes) -> None:
        self._out += FRAME.pack(len(payload))
        self._out += payload
        self._send()

    def _send(self) -> None:
        try:
            while self._out:
                n = self.sock.send(self._out)
                del self._out[:n]
        except BlockingIOError:
            if not self._writing:
                self._writing = True
                self.loop.add_writer(self.sock, self._send)
            return
        except OSError as exc:
            self._stop(WriterGone(f"the access-log writer stopped ({exc})"))
            return
        if self._writing:
            self._writing = False
            self.loop.remove_writer(self.sock)

    # acknowledgements

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            self._stop(WriterGone(f"the access-log writer stopped ({exc})"))
            return
        if not data:
            self._stop(WriterGone("the access-log writer stopped"))
            return
        self._in += data
        at = 0
        buf = self._in
        while at < len(buf) and self._sent:
            if buf[at] == ACK_OK:
                at += 1
                error: BaseException | None = None
            else:
                if len(buf) - at < 1 + FRAME.size:
                    break
                (n,) = FRAME.unpack_from(buf, at + 1)
                if len(buf) - at - 1 - FRAME.size < n:
                    break
                error = WriterRefused(bytes(buf[at + 1 + FRAME.size:at + 1 + FRAME.size + n])
                                      .decode(errors="replace"))
                at += 1 + FRAME.size + n
            waiters, timer = self._sent.popleft()
            timer.cancel()
            for future in waiters:
                if not future.done():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        del buf[:at]

    # stopping

    def _stop(self, error: BaseException) -> None:
        """The writer is gone or unreachable: fail whatever it has not acknowledged."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock)
            if self._writing:
                self.loop.remove_writer(self.sock)
        self.sock.close()
        failed = [w for waiters, timer in self._sent for w in waiters]
        for _, timer in self._sent:
            timer.cancel()
        self._sent.clear()
        failed += self._waiters
        self._batch, self._waiters = [], []
        for future in failed:
            if not future.done():
                future.set_exception(error)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=0)  # reaped if it already ended

    def close(self, timeout_s: float = 30.0) -> None:
        """Send what is queued, close our end (the writer writes what it has received, then
        exits), wait for it. Safe from any thread once the loop no longer serves."""
        if self.alive:
            self.alive = False
            if self._batch:  # never sent: its readers were not answered (requests cut off)
                for future in self._waiters:
                    if not future.done() and not self.loop.is_closed():
                        self.loop.call_soon_threadsafe(_cancel, future)
            with contextlib.suppress(Exception):
                self.sock.setblocking(True)
                if self._out:
                    self.sock.sendall(self._out)
                self.sock.shutdown(socket.SHUT_WR)
            if not self.loop.is_closed():
                with contextlib.suppress(Exception):
                    self.loop.call_soon_threadsafe(self._detach)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(Exception):
            self.sock.close()

    def _detach(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock)
            self.loop.remove_writer(self.sock)


def _cancel(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(WriterGone("the server is stopping"))


if __name__ == "__main__":
    raise SystemExit(main())
