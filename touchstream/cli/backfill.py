"""``touchstream backfill FILE``: import a history of commands (JSON lines) in bulk.

Each line is one command object with a ``kind`` field (``call``, ``email``,
``fax``, ``visit``, ``web-form``, ``call-step``, ``callback-requested``,
``callback-completed``, and the customer commands ``register``,
``add-contact``…). The whole file is validated first: one bad line records
nothing. Then touchpoints go through the bulk import path (batched key
lookups, chunked multi-event saves); other commands run one by one in their
place. Importing the same file again records nothing new.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from commands import messages as m
from commands.bulk import BulkImporter
from replays.progress import ProgressBar
from touchstream.cli.common import ending, open_hub, print_json
from touchstream.cli.errors import CliError, describe_validation
from touchstream.cli.exits import Exit

_MODELS: tuple[type[m.Command], ...] = (
    m.RegisterCustomer, m.ChangeProfile, m.AddContactPoint, m.RemoveContactPoint,
    m.ChangeLifecycleStage, m.AddNote, m.AssignPartner, m.MergeCustomers,
    m.UnmergeCustomer, *m.TOUCHPOINT_COMMANDS.values(),
)
COMMANDS: dict[str, type[m.Command]] = {
    str(model.model_fields["kind"].default): model for model in _MODELS
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "backfill", help="import a history of commands (JSON lines) in bulk",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="JSON lines file, or - for stdin")
    p.add_argument("--results", action="store_true",
                   help="print one JSON result per input line (default: a summary only)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    with _source(args.file) as path:
        count = sum(1 for _ in _commands(path))  # validate everything before recording anything
        recorded = duplicates = failed = 0
        lines: deque[int] = deque()

        def commands() -> Iterator[m.Command]:
            for number, cmd in _commands(path):
                lines.append(number)
                yield cmd

        bar = ProgressBar.on_terminal("backfill", unit="cmd")
        with open_hub() as hub, ending(bar):
            for done, result in enumerate(BulkImporter(hub).iter_import(commands()), start=1):
                bar(done, count)
                line = lines.popleft()  # results come in input order
                if result.recorded is None:
                    failed += 1
                    print(f"touchstream: line {line}: {result.error}", file=sys.stderr)
                elif result.recorded.duplicate:
                    duplicates += 1
                else:
                    recorded += 1
                if args.results:
                    print_json({"line": line, "error": result.error,
                                **(asdict(result.recorded) if result.recorded else {})})
    print_json({"commands": count, "recorded": recorded, "duplicates": duplicates,
                "failed": failed})
    return Exit.PROBLEMS if failed else Exit.OK


def _commands(path: Path) -> Iterator[tuple[int, m.Command]]:
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            yield number, _parse(number, raw)


def _parse(number: int, raw: str) -> m.Command:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"line {number}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"line {number}: expected a JSON object")
    model = COMMANDS.get(str(data.get("kind")))
    if model is None:
        raise CliError(f"line {number}: unknown kind {data.get('kind')!r}; "
                       f"one of: {', '.join(sorted(COMMANDS))}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CliError(f"line {number}: {describe_validation(exc)}") from exc


class _source:
    """The input as a file: stdin is spooled to a temporary file (it is read twice)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tmp: IO[str] | None = None

    def __enter__(self) -> Path:
        if self.name != "-":
            path = Path(self.name)
            if not path.is_file():
                raise CliError(f"no such file: {self.name}")
            return path
        self.tmp = tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".jsonl")
        shutil.copyfileobj(sys.stdin, self.tmp)
        self.tmp.flush()
        return Path(self.tmp.name)

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.close()
