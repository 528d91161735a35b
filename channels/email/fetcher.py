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
import logging
import os
import pickle
import re
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
from imapclient.datetime_util import parse_to_datetime
from imapclient.imapclient import SocketTimeout, join_message_ids
from imapclient.response_parser import parse_fetch_response

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
    quiet_protocol_log(client)
    try:
        if cfg.security == "starttls":
            client.starttls(context)
        client.login(cfg.user, cfg.password)
    except BaseException:
        with suppress(OSError, imaplib.IMAP4.error):  # closing a connection that failed to log in
            client.shutdown()
        raise
    return client


def quiet_protocol_log(client: IMAPClient) -> None:
    """Turn imaplib's protocol trace off unless someone reads it.

    imapclient sets imaplib's ``debug`` to 5 and hands its lines to the
    ``imapclient.imaplib`` logger; at that level imaplib formats every response with
    ``repr``, message bodies included (each literal, then the whole batch again), before
    the logger drops them: 0.15 -> 0.036 ms of CPU a message to fetch the email
    benchmark's mailbox without it, a quarter of the fetch-ahead worker's samples
    (py-spy). With that logger enabled for DEBUG the trace stays as imapclient set it."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def fetch_batch(
    client: IMAPClient, batch: list[int], sizes: dict[int, int], limit: int
) -> dict[int, dict[bytes, Any]]:
    """Whole messages up to ``limit`` bytes, only the header of bigger ones."""
    small = [u for u in batch if u in sizes and sizes[u] <= limit]
    big = [u for u in batch if u in sizes and sizes[u] > limit]
    items: dict[int, dict[bytes, Any]] = {}
    if small:
        items.update(_fetch(client, small, ["BODY.PEEK[]", "INTERNALDATE"]))
    if big:
        items.update(_fetch(client, big, ["BODY.PEEK[HEADER]", "INTERNALDATE"]))
    return items


def list_sizes(client: IMAPClient, uids: list[int]) -> dict[int, int]:
    """The RFC822.SIZE of each message still there, by UID (as ``client.fetch`` gives it)."""
    listed = _fetch(client, uids, ["RFC822.SIZE"], read_sizes)
    return {u: int(d[b"RFC822.SIZE"]) for u, d in listed.items()}


def _fetch(client: IMAPClient, uids: list[int], what: list[str],
           reader: Callable[[list[Any], bool], dict[int, dict[bytes, Any]] | None] | None = None,
           ) -> dict[int, dict[bytes, Any]]:
    """``client.fetch(uids, what)``, the same command and the same answer, read faster.

    imapclient's own reader tokenises every response in Python, for a few words around
    each message's literal: a quarter of the CPU of fetching a batch (0.225 -> 0.170 ms a
    message of the email benchmark's mailbox without it; its size listing 0.029 -> 0.015).
    Here the command is sent and checked as ``IMAPClient.fetch`` sends and checks it
    (its connection's ``_command``/``_command_complete``/``_untagged_response``, then
    ``_checkok``); the answer is read by ``reader`` (``read_fetched``) when every response
    has the plain form servers give these items in, else by imapclient's reader. A client that
    is no ``IMAPClient`` (a stand-in) is asked ``fetch`` itself."""
    if not isinstance(client, IMAPClient) or not client.use_uid or not PRIVATE_CALLS_THERE:
        return dict(client.fetch(uids, what))
    imap = client._imap
    tag = imap._command("UID", "FETCH", join_message_ids(uids),
                        "(" + " ".join(what) + ")")
    typ, data = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    typ, data = imap._untagged_response(typ, data, "FETCH")
    found = (reader or read_fetched)(data, client.normalise_times)
    if found is None:
        return dict(parse_fetch_response(data, client.normalise_times, True))
    return found


# The private calls ``_fetch`` makes, as imapclient 3 and imaplib make them. If an upgrade
# renames one, fetching falls back to ``client.fetch`` (slower, same answers), and
# tests/unit/test_email_fetch_reader.py fails so that the upgrade is looked at.
PRIVATE_CALLS_THERE = all(hasattr(imaplib.IMAP4, name) for name in (
    "_command", "_command_complete", "_untagged_response")) and hasattr(IMAPClient, "_checkok")


# One message's response to UID FETCH (BODY.PEEK[...] INTERNALDATE) as imaplib hands it
# over: this head and the literal, then ")" alone.
_PLAIN_FETCH = re.compile(
    rb'(\d+) \(UID (\d+) INTERNALDATE "([^"\\]*)" (BODY\[(?:HEADER)?\]) \{(\d+)\}')


_PLAIN_SIZE = re.compile(rb"(\d+) \(UID (\d+) RFC822\.SIZE (\d+)\)")


def read_sizes(data: list[Any], _: bool = False) -> dict[int, dict[bytes, Any]] | None:
    """What ``parse_fetch_response(data, ..., True)`` returns for a FETCH of RFC822.SIZE
    when every response is plain (``1 (UID 7 RFC822.SIZE 1234)``, each UID once); None
    otherwise, and imapclient reads it."""
    if data == [None]:
        return {}
    out: dict[int, dict[bytes, Any]] = {}
    for line in data:
        found = _PLAIN_SIZE.fullmatch(line) if type(line) is bytes else None
        if found is None or int(found[2]) in out:
            return None
        out[int(found[2])] = {b"SEQ": int(found[1]), b"RFC822.SIZE": int(found[3])}
    return out


def read_fetched(data: list[Any], normalise_times: bool) -> dict[int, dict[bytes, Any]] | None:
    """What ``parse_fetch_response(data, normalise_times, True)`` returns for a FETCH of a
    body section and INTERNALDATE, when every response has the plain form (sequence
    number, UID, date, one literal, in that order, each UID once); None otherwise
    (unsolicited FETCH responses, another order, NIL, quoted bodies...): the caller
    then lets imapclient read it."""
    if data == [None]:
        return {}
    if len(data) % 2:
        return None
    out: dict[int, dict[bytes, Any]] = {}
    for i in range(0, len(data), 2):
        head, tail = data[i], data[i + 1]
        if tail != b")" or type(head) is not tuple or len(head) != 2:
            return None
        found = _PLAIN_FETCH.fullmatch(head[0])
        literal = head[1]
        if found is None or type(literal) is not bytes or len(literal) != int(found[5]):
            return None
        uid = int(found[2])
        if uid in out:
            return None
        try:
            received = parse_to_datetime(found[3], normalise=normalise_times)
        except ValueError:
            received = None  # as imapclient: an unreadable date is None
        out[uid] = {b"SEQ": int(found[1]), b"INTERNALDATE": received, found[4]: literal}
    return out


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
