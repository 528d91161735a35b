"""Errors become one clear line on stderr and a non-zero exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

from eventsourcing.persistence import InfrastructureFactoryError, PersistenceError
import psycopg
from kurrentdbclient.exceptions import KurrentDBClientError
from pydantic import ValidationError

from commands.hub import CommandError, CustomerNotFoundError
from projections.faults import DamagedEventError
from domain.errors import DomainError
from touchstream.settings import SettingsError

EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_NOT_FOUND = 4
EXIT_STORE = 5
EXIT_DAMAGED = 6  # the store holds an event that cannot be decoded (see projections status)


class CliError(Exception):
    """Raised by a command for bad input that is not a validation error."""


def describe_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "input"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid input:\n" + "\n".join(lines)


def run_guarded(action: Callable[[], int | None]) -> int:
    try:
        return action() or 0
    except ValidationError as exc:
        print(f"touchstream: {describe_validation(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, SettingsError, ValueError) as exc:
        print(f"touchstream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CustomerNotFoundError as exc:
        print(f"touchstream: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (DomainError, CommandError) as exc:
        print(f"touchstream: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    except DamagedEventError as exc:
        print(f"touchstream: the store is damaged: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    except (PersistenceError, InfrastructureFactoryError, KurrentDBClientError, psycopg.Error) as exc:
        print(f"touchstream: event store unavailable or failing: {exc}", file=sys.stderr)
        return EXIT_STORE
    except KeyboardInterrupt:
        return 130
