"""Errors become one clear line on stderr and an exit code from ``exits.Exit``.

This is the one place exceptions are translated for the CLI; commands raise
and return ``Exit`` members, never bare numbers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from touchstream.cli.exits import Exit

if TYPE_CHECKING:
    from pydantic import ValidationError

# Kept for modules that still import the old names (same values as the table).
EXIT_USAGE = Exit.USAGE
EXIT_CONFLICT = Exit.CONFLICT
EXIT_NOT_FOUND = Exit.NOT_FOUND
EXIT_STORE = Exit.STORE


class CliError(Exception):
    """Raised by a command for bad input that is not a validation error."""


class NotFoundError(CliError):
    """Raised by a command when the thing it was asked about does not exist."""


def describe_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "input"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid input:\n" + "\n".join(lines)


def _translate(exc: Exception) -> tuple[Exit, str] | None:
    """The exit code and message for an error the CLI expects (None: a bug, re-raise)."""
    # Imported here, on the error path: at module level they would load the whole
    # application into every command, whatever it needs.
    import psycopg
    from eventsourcing.persistence import (
        InfrastructureFactoryError,
        MapperDeserialisationError,
        PersistenceError,
    )
    from kurrentdbclient.exceptions import KurrentDBClientError
    from pydantic import ValidationError

    from commands.hub import CommandError, CustomerNotFoundError
    from commands.identity import InvalidContactPointError
    from commands.records import RecordNotFoundError
    from domain.dispatch import WorkOrderUnknownError
    from domain.errors import DomainError, TouchpointUnknownError
    from projections.analyst.installed import AnalystProjectionExistsError
    from projections.faults import DamagedEventError
    from projections.store import ReadStoreError
    from replays.analyst.run import ReplayHandlerError, ReplaySpecError
    from replays.audit.access import AccessLogError
    from touchstream.adapters.keys import KeyStoreError, UnknownKeyError
    from touchstream.privacy.datakeys import (
        DataKeyMissingError,
        MasterKeyError,
        SubjectErasedError,
    )
    from touchstream.settings import SettingsError

    if isinstance(exc, ValidationError):
        return Exit.USAGE, describe_validation(exc)
    if isinstance(exc, MasterKeyError):
        return Exit.USAGE, str(exc)
    if isinstance(exc, (SubjectErasedError, AnalystProjectionExistsError)):
        return Exit.CONFLICT, str(exc)
    if isinstance(exc, ReplayHandlerError):
        return Exit.PROBLEMS, str(exc)
    if isinstance(exc, ReplaySpecError):
        return Exit.USAGE, str(exc)
    if isinstance(exc, DataKeyMissingError):
        return Exit.DAMAGED, f"the key store is damaged: {exc}"
    if isinstance(exc, AccessLogError):
        return Exit.STORE, ("the read could not be recorded in the access log, so nothing "
                            f"was shown ({exc})")
    # Before ValueError: an event that does not decode or authenticate (a flipped byte,
    # a ciphertext moved between events) is a damaged store, not bad input.
    if isinstance(exc, (DamagedEventError, MapperDeserialisationError)):
        return Exit.DAMAGED, f"the event store is damaged: {exc}"
    if isinstance(exc, (CustomerNotFoundError, TouchpointUnknownError, UnknownKeyError,
                        NotFoundError, RecordNotFoundError, WorkOrderUnknownError)):
        return Exit.NOT_FOUND, str(exc)
    # Invalid contact points are bad input, not a rule refusing good input.
    if isinstance(exc, (CliError, SettingsError, ValueError, KeyStoreError,
                        InvalidContactPointError)):
        return Exit.USAGE, str(exc)
    if isinstance(exc, (DomainError, CommandError)):
        return Exit.CONFLICT, str(exc)
    if isinstance(exc, (PersistenceError, InfrastructureFactoryError, KurrentDBClientError,
                        psycopg.Error, ReadStoreError)):
        return Exit.STORE, f"event store or read store unavailable or failing: {exc}"
    return None


def run_guarded(action: Callable[[], int | None]) -> int:
    try:
        code = int(action() or Exit.OK)
        sys.stdout.flush()  # a closed pipe shows up here for short, buffered output
        return code
    except BrokenPipeError:
        _discard_stdout()
        return Exit.PIPE_CLOSED
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except Exception as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        code, message = translated
        print(f"touchstream: {message}", file=sys.stderr)
        return code


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
