"""The CLI imports only the modules of the command asked for, and the parser it builds
for that command is the one the full parser holds (``touchstream.cli.COMMANDS``)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from touchstream.cli import COMMANDS, MODULES, build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (sub)parser's help below ``parser``, by command path."""
    yield path, parser.format_help()
    for name, child in _subparsers(parser).items():
        yield from _helps(child, f"{path} {name}")


FULL = _subparsers(build_parser())


def test_the_table_names_only_commands_the_modules_define() -> None:
    assert set(COMMANDS) <= set(FULL)
    # and every command is in it: a forgotten one would still work, at full import cost
    assert set(FULL) == set(COMMANDS), "add the new command to touchstream.cli.COMMANDS"
    assert {m for modules in COMMANDS.values() for m in modules} <= set(MODULES)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_parses_as_with_every_module_loaded(command: str) -> None:
    lazy = _subparsers(build_parser(command))
    assert list(lazy) == [c for c in FULL if c in lazy]  # its modules' commands only
    assert dict(_helps(lazy[command])) == dict(_helps(FULL[command]))


def test_a_command_does_not_load_the_other_commands() -> None:
    probe = ("import json, sys\nfrom touchstream.cli import build_parser\n"
             "build_parser('keys')\nprint(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    loaded = set(json.loads(done.stdout))
    assert "touchstream.cli.keys" in loaded
    assert not loaded & (set(MODULES) - {"touchstream.cli.keys", "touchstream.cli.privacy"})
    assert "fastapi" not in loaded  # nor the HTTP app
