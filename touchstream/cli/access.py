"""The CLI's reads of a customer's personal data, on record in the read audit.

Every command that shows a customer's data (``timeline``, ``customer show``,
``events``, ``calls``, ``customer export``) calls ``record_reads`` after it has
found the customer and before it prints anything (or moves its file into place),
so the access record is durable before anything is shown, as in the read API.
When it cannot be made, ``AccessLogError`` ends the command with ``Exit.STORE``
and nothing shown. An unknown customer is not recorded (nothing was shown).

Who read: key id ``cli:<OS user>``, role ``cli``, client the host name, a fresh
request id per command. Route: the command line with the customer id as
``{customer}`` and the values that could carry personal data (search words, file
names) withheld as ``…``, e.g. ``touchstream timeline {customer} --limit 20
--search …``. Customers: the one asked for, and its merge root too when a command
shows the root's data for a merged-away id (as the timeline and summary routes do).
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from projections.store import ReadStore
from replays.audit import access as access_log

ROLE = "cli"
WITHHELD = "…"


def reader() -> str:
    """The key id of whoever runs this process: ``cli:<OS user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's bare uid)
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def command_line(command: str, **options: object) -> str:
    """``touchstream <command>`` and its options (``--name`` for True, ``--name value``
    per value of a list; None, False and empty lists leave the option out)."""
    words = ["touchstream", command]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                words += [flag, str(item)]
        elif value is not None and value is not False:
            words += [flag, str(value)]
    return " ".join(words)


def record_reads(store: ReadStore, route: str, customer_ids: Iterable[str]) -> None:
    """Record that this process showed each customer's data (once each); returns once
    the records are durable, AccessLogError when they cannot be made."""
    key_id, client = reader(), socket.gethostname()
    request_id = uuid.uuid4().hex
    recorder = access_log.AccessRecorder(store)
    try:
        for customer_id in dict.fromkeys(customer_ids):
            recorder.record(access_log.AccessEntry(
                at=datetime.now(UTC).isoformat(), key_id=key_id, role=ROLE, route=route,
                customer_id=customer_id, request_id=request_id, client=client))
    finally:
        recorder.close()
