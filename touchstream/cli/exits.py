"""The CLI's exit codes: the one table every subcommand returns from.

The README's "Exit codes" table is rendered from ``EXIT_CODES`` and a test
checks that it matches (``markdown_table()``), so the two cannot drift.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What a ``touchstream`` process's exit status means."""

    OK = 0
    PROBLEMS = 1
    USAGE = 2
    CONFLICT = 3
    NOT_FOUND = 4
    STORE = 5
    SERVER = 6
    DAMAGED = 7
    INTERRUPTED = 130
    PIPE_CLOSED = 141


EXIT_CODES: dict[Exit, str] = {
    Exit.OK: "done",
    Exit.PROBLEMS: "ran to the end but found problems: rows quarantined or refused "
                   "(`import`, `backfill`; the other rows were recorded), gaps or "
                   "differences (`--verify`, `--verify-only`)",
    Exit.USAGE: "invalid input: unknown flag, unparseable id, date, number or email, "
                "failed validation; nothing recorded",
    Exit.CONFLICT: "refused by a rule: contact point owned by another customer, merged "
                   "customer, transition not allowed, concurrent change; nothing recorded",
    Exit.NOT_FOUND: "no such customer, API key, call, work order or technician (also "
                     "`customer find` with no owner)",
    Exit.STORE: "event store or read store unavailable (given up after "
                "`TOUCHSTREAM_STORE_TIMEOUT` seconds) or failing (a read that could not be "
                "recorded in the access log shows nothing); retry",
    Exit.SERVER: "the mail server could not be reached or broke off (`ingest`, `email send`)",
    Exit.DAMAGED: "the event store is damaged: an event cannot be decoded or applied; the read "
                  "models that met it stopped there (`projections status`, `run`, `rebuild`)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
    Exit.PIPE_CLOSED: "the reader closed the output early (piped into `head`); ends quietly",
}


def markdown_table() -> str:
    """The README's exit-code table."""
    rows = ["| Exit | Meaning |", "|---|---|"]
    rows += [f"| {int(code)} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(rows)
