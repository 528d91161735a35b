"""An analyst's projection in one small Python file: its output table and its handlers.

The file format (the same for a one-off ``touchstream replay run`` and a live
read model added with ``touchstream projections add``)::

    \"\"\"Calls per queue and day.\"\"\"
    NAME = "calls_by_queue"                 # lower case, digits, underscores
    COLUMNS = {"day": "date", "queue": "text", "talk_s": "integer"}

    def on_CallLogged(event, emit):         # on_<event class name>
        emit(day=event.occurred_at.date(), queue=event.queue, talk_s=event.duration_s)

    def on_event(event, emit):              # optional: every event without its own handler
        ...

``event`` is the decoded, read-only domain event (personal fields ``None``
when its customer was erased); ``emit(**row)`` adds one output row with
exactly the declared columns. Every row also carries ``position`` (the
event's place in the log) and ``seq`` (its order among that event's rows),
which make the output deterministic and its key. Column types: ``text``,
``integer``, ``real``, ``boolean``, ``date``, ``timestamp`` (timezone-aware,
stored as UTC), ``decimal`` (kept exactly, as text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TYPES = ("text", "integer", "real", "boolean", "date", "timestamp", "decimal")
IMPLICIT = ("position", "seq")
Handler = Callable[[Any, Callable[..., None]], None]


class SpecError(ValueError):
    """Raised when an analyst file does not define a valid projection (says what is wrong)."""


class RowError(ValueError):
    """Raised when a handler emits a row that does not match the declared columns."""


@dataclass(frozen=True)
class AnalystSpec:
    """A loaded analyst file."""

    name: str
    columns: tuple[tuple[str, str], ...]
    handlers: Mapping[str, Handler]
    on_event: Handler | None
    doc: str
    source: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return (*IMPLICIT, *(c for c, _ in self.columns))

    def handler_for(self, event: Any) -> Handler | None:
        return self.handlers.get(type(event).__name__, self.on_event)

    def rows(self, position: int, event: Any) -> list[tuple[Any, ...]]:
        """The rows this event gives, checked and normalised (``RowError`` if not)."""
        handler = self.handler_for(event)
        if handler is None:
            return []
        out: list[tuple[Any, ...]] = []

        def emit(**row: Any) -> None:
            out.append((position, len(out), *self._checked(row)))

        handler(event, emit)
        return out

    def _checked(self, row: dict[str, Any]) -> list[Any]:
        names = [c for c, _ in self.columns]
        if set(row) != set(names):
            missing = sorted(set(names) - set(row))
            extra = sorted(set(row) - set(names))
            raise RowError(f"emit() got columns {sorted(row)}: missing {missing}, "
                           f"undeclared {extra} (COLUMNS declares {names})")
        return [_value(name, kind, row[name]) for name, kind in self.columns]


def _value(name: str, kind: str, value: Any) -> Any:
    """The stored form of one value: the same in SQLite, PostgreSQL, Parquet and CSV."""
    if value is None:
        return None
    ok: bool
    if kind == "text":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "real":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "date":
        ok = isinstance(value, date) and not isinstance(value, datetime)
        value = value.isoformat() if ok else value
    elif kind == "timestamp":
        ok = isinstance(value, datetime) and value.tzinfo is not None
        value = value.astimezone(UTC).isoformat() if ok else value
    else:  # decimal
        ok = isinstance(value, Decimal | int | str) and not isinstance(value, bool)
        if ok:
            try:
                value = str(Decimal(value))
            except ArithmeticError:
                ok = False
    if not ok:
        raise RowError(f"column {name!r} is {kind}, got {type(value).__name__} {value!r}")
    return value


def load_spec(source: str, filename: str = "<analyst file>") -> AnalystSpec:
    """Run the file's top level and read its NAME, COLUMNS and handlers."""
    namespace: dict[str, Any] = {"__name__": "touchstream_analyst", "__file__": filename}
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise SpecError(f"{filename}: line {exc.lineno}: {exc.msg}") from exc
    exec(code, namespace)  # noqa: S102 -- running the analyst's file is the point
    name = namespace.get("NAME")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(f"{filename}: NAME must be lower-case letters, digits and underscores "
                        f"(at most 40, starting with a letter), got {name!r}")
    columns = namespace.get("COLUMNS")
    if not isinstance(columns, dict) or not columns:
        raise SpecError(f"{filename}: COLUMNS must be a non-empty dict of column name -> type")
    checked: list[tuple[str, str]] = []
    for col, kind in columns.items():
        if not isinstance(col, str) or not NAME_RE.match(col) or col in IMPLICIT:
            raise SpecError(f"{filename}: column name {col!r} is not allowed "
                            f"(lower-case identifier, not {' or '.join(IMPLICIT)})")
        if kind not in TYPES:
            raise SpecError(f"{filename}: column {col!r} has type {kind!r}; "
                            f"types: {', '.join(TYPES)}")
        checked.append((col, kind))
    handlers = {k.removeprefix("on_"): v for k, v in namespace.items()
                if k.startswith("on_") and k != "on_event" and callable(v)}
    on_event = namespace.get("on_event")
    if not handlers and not callable(on_event):
        raise SpecError(f"{filename}: define on_<EventClass>(event, emit) handlers "
                        "or on_event(event, emit)")
    doc = namespace.get("__doc__") or ""
    return AnalystSpec(name, tuple(checked), handlers,
                       on_event if callable(on_event) else None, doc.strip(), source)
