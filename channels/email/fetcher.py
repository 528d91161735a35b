"""Fetching a batch of messages, here or ahead in a process of its own.

Ingesting uses one core for fetching, parsing and recording each batch in turn,
and the machine has more. A ``FetchAhead`` worker (``python -m
channels.email.fetcher``) logs in on a connection of its own, selects the
folder read-only, and fetches and parses the batches it is asked for while the
ingester records the batch before. It only reads (``BODY.PEEK``): what is
recorded, checkpointed, flagged or moved is still decided by the ingester, in
the same order, so a kill of either process loses and doubles nothing. Its
parse is the ingester's own (``parse_fetched``, same limits).

The worker talks pickle over its stdin/stdout to the process that started it,
and nothing else; it stops at end of input, so it never outlives that process.
"""

from __future__ import annotations

import imaplib
import os
import pickle
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Self

from imapclient import IMAPClient
from imapclient.imapclient import SocketTimeout

from channels.email.config import ImapConfig
from channels.email.parse import MessageRejectedError, ParsedEmail, parse_fetched

FETCH_BYTES = 32 * 1024 * 1024  # at most this much message data per FETCH

Parsed = ParsedEmail | MessageRejectedError | None


class FetchAheadError(Exception):
    """Raised when the fetch-ahead worker fails; ``server`` tells whether the mail server
    (network, protocol, login, a renumbered folder) is why."""

    def __init__(self, message: str, *, server: bool) -> None:
        super().__init__(message)
        self.server = server


@dataclass(frozen=True)
class Ahead:
    """One message as the worker hands it over: its FETCH item and its parse."""

    item: dict[bytes, Any]
    parsed: Parsed


def connect(cfg: ImapConfig) -> IMAPClient:
    """A logged-in client (closed again if the login fails)."""
    context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.security != "plain" else None
    client = IMAPClient(
        cfg.host, port=cfg.port, ssl=cfg.security == "tls", ssl_context=context,
        timeout=SocketTimeout(connect=cfg.timeout_s, read=cfg.timeout_s),
    )
    client.normalise_times = False
    try:
        if cfg.security == "starttls":
            client.starttls(context)
        client.login(cfg.user, cfg.password)
    except BaseException:
        with suppress(OSError, imaplib.IMAP4.error):  # closing a connection that failed to log in
            client.shutdown()
        raise
    return client


def fetch_batch(
    client: IMAPClient, batch: list[int], sizes: dict[int, int], limit: int
) -> dict[int, dict[bytes, Any]]:
    """Whole messages up to ``limit`` bytes, only the header of bigger ones."""
    small = [u for u in batch if u in sizes and sizes[u] <= limit]
    big = [u for u in batch if u in sizes and sizes[u] > limit]
    items: dict[int, dict[bytes, Any]] = {}
    if small:
        items.update(client.fetch(small, ["BODY.PEEK[]", "INTERNALDATE"]))
    if big:
        items.update(client.fetch(big, ["BODY.PEEK[HEADER]", "INTERNALDATE"]))
    return items


def parse_item(item: dict[bytes, Any], max_bytes: int, max_depth: int) -> Parsed:
    """The parse of one FETCH item, as the ingester would make it."""
    if b"BODY[]" in item:
        raw = bytes(item[b"BODY[]"] or b"")
        return parse_fetched(raw, True, len(raw), max_bytes, max_depth)
    return None  # only the header: oversized


class FetchAhead:
    """The worker process, seen from the ingester: ``ask`` for batches in order, then take
    each one's messages with ``take``, in the same order."""

    def __init__(self, config: ImapConfig, folder: str, uidvalidity: int, max_bytes: int,
                 max_depth: int) -> None:
        # The worker runs the code this process runs: this package's root first on its
        # path, and -P so that the working directory (maybe another checkout) is not.
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [package_root, *filter(None, [env.get("PYTHONPATH")])])
        self._proc = subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-P", "-m", "channels.email.fetcher"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._to: IO[bytes] = self._proc.stdin
        self._from: IO[bytes] = self._proc.stdout
        self._send((config, folder, uidvalidity, max_bytes, max_depth))

    def ask(self, batch: list[int], sizes: dict[int, int]) -> None:
        self._send((batch, {u: sizes[u] for u in batch if u in sizes}))

    def take(self) -> dict[int, Ahead]:
        try:
            kind, value = pickle.load(self._from)
        except (EOFError, pickle.UnpicklingError, OSError) as exc:
            raise FetchAheadError(f"fetch-ahead worker stopped: {exc!r}", server=False) from exc
        if kind == "error":
            message, server = value
            raise FetchAheadError(message, server=server)
        return {uid: Ahead(item, _parsed_from(parsed)) for uid, (item, parsed) in value.items()}

    def close(self) -> None:
        """Stop the worker (at once: it only ever reads) and reap it."""
        for pipe in (self._to, self._from):
            try:
                pipe.close()
            except OSError:  # the worker is gone already: nothing to flush
                pass
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, message: object) -> None:
        try:
            pickle.dump(message, self._to, protocol=pickle.HIGHEST_PROTOCOL)
            self._to.flush()
        except OSError as exc:
            raise FetchAheadError(f"fetch-ahead worker stopped: {exc!r}", server=False) from exc


def _parsed_to(parsed: Parsed) -> object:
    # MessageRejectedError does not pickle (its args are its message, not its fields)
    if isinstance(parsed, MessageRejectedError):
        return ("rejected", parsed.reason, parsed.detail)
    return parsed


def _parsed_from(value: object) -> Parsed:
    if isinstance(value, tuple):
        _, reason, detail = value
        return MessageRejectedError(reason, detail)
    assert value is None or isinstance(value, ParsedEmail)
    return value


def _plain_times(item: dict[bytes, Any]) -> dict[bytes, Any]:
    """imapclient's fixed-offset tzinfo does not pickle; the same instant and offset do."""
    received = item.get(b"INTERNALDATE")
    if isinstance(received, datetime) and received.tzinfo is not None:
        offset = received.utcoffset() or timedelta(0)
        item = {**item, b"INTERNALDATE": received.replace(tzinfo=timezone(offset))}
    return item


def serve(source: IO[bytes], sink: IO[bytes],
          open_client: Callable[[ImapConfig], IMAPClient] = connect) -> None:
    """The worker's loop: a set-up message, then one answer per batch asked for."""
    config, folder, uidvalidity, max_bytes, max_depth = pickle.load(source)
    client: IMAPClient | None = None
    try:
        client = open_client(config)
        info = client.select_folder(folder, readonly=True)
        if int(info[b"UIDVALIDITY"]) != uidvalidity:
            raise _Renumbered(f"{folder}: UIDVALIDITY {uidvalidity} -> {info[b'UIDVALIDITY']}")
        for batch, sizes in _requests(source):
            items = fetch_batch(client, batch, sizes, max_bytes)
            answer = {
                uid: (_plain_times(item),
                      _parsed_to(parse_item(item, max_bytes, max_depth)))
                for uid, item in items.items()
            }
            pickle.dump(("ok", answer), sink, protocol=pickle.HIGHEST_PROTOCOL)
            sink.flush()
    except (OSError, imaplib.IMAP4.error, _Renumbered) as exc:
        _report(sink, f"IMAP {config.host}:{config.port}: {type(exc).__name__}: {exc}", True)
    except Exception as exc:  # anything else: the ingester stops the pass and says why
        _report(sink, f"fetch-ahead: {type(exc).__name__}: {exc}", False)
    finally:
        if client is not None:
            with suppress(OSError, imaplib.IMAP4.error):  # a broken connection: nothing to save
                client.logout()


def _requests(source: IO[bytes]) -> Iterator[tuple[list[int], dict[int, int]]]:
    while True:
        try:
            yield pickle.load(source)
        except EOFError:
            return


def _report(sink: IO[bytes], message: str, server: bool) -> None:
    try:
        pickle.dump(("error", (message, server)), sink)
        sink.flush()
    except OSError:  # the ingester is gone: nobody to tell
        pass


class _Renumbered(Exception):
    pass


def main() -> None:
    # Answers go to a private copy of stdout; anything printed goes to stderr instead.
    sink = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, sink)


if __name__ == "__main__":
    main()
