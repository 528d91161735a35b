"""Helpers shared by the CLI modules: the hub, JSON output, model-driven flags."""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from commands.hub import Hub
from commands.ports import Recorded
from replays.progress import ProgressBar
from touchstream.bootstrap import opened
from touchstream.cli.errors import CliError


@contextmanager
def open_hub() -> Iterator[Hub]:
    """The write model of ``touchstream.bootstrap``, for one command."""
    with opened() as deps:
        yield deps.hub


@contextmanager
def ending(bar: ProgressBar) -> Iterator[ProgressBar]:
    """Finish ``bar``'s line however the work ends (so messages start on a fresh line)."""
    try:
        yield bar
    finally:
        bar.done()


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=True))


def print_recorded(result: Recorded) -> None:
    print_json({**asdict(result), "position": result.position})


def _flag_kind(annotation: Any) -> str:
    """'scalar', 'list', 'dict' or 'json' (nested models: JSON on stdin only)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flag_kind(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_flag_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "scalar"
    if origin is list:
        (item,) = typing.get_args(annotation)
        return "json" if _is_model(item) else "list"
    if origin is dict:
        return "dict"
    return "json" if _is_model(annotation) else "scalar"


def _is_model(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """One flag per field (``call_id`` → ``--call-id``); lists repeat, dicts take k=v."""
    for name, field in model.model_fields.items():
        if name == "kind":
            continue
        kind = _flag_kind(field.annotation)
        flag = "--" + name.replace("_", "-")
        help_ = field.description or ""
        if kind == "json":
            continue
        if kind == "list":
            parser.add_argument(flag, dest=name, action="append", help=help_ + " (repeatable)")
        elif kind == "dict":
            parser.add_argument(flag, dest=name, action="append", metavar="KEY=VALUE",
                                help=help_ + " (repeatable)")
        else:
            parser.add_argument(flag, dest=name, help=help_)
    parser.add_argument("--json", action="store_true",
                        help="read the command as a JSON object from stdin (flags override)")


def model_input(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if getattr(args, "json", False):
        raw = sys.stdin.read()
        try:
            loaded = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CliError(f"stdin is not valid JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise CliError("stdin must hold one JSON object")
        data.update(loaded)
    for name, field in model.model_fields.items():
        value = getattr(args, name, None)
        if value is None or name == "kind":
            continue
        if _flag_kind(field.annotation) == "dict":
            pairs = {}
            for item in value:
                key, sep, val = item.partition("=")
                if not sep:
                    raise CliError(f"--{name.replace('_', '-')} expects KEY=VALUE, got {item!r}")
                pairs[key] = val
            value = pairs
        data[name] = value
    return data
