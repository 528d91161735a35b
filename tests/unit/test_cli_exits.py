"""One exit-code table: defined in ``touchstream.cli.exits``, documented in the README
from it, and the only source of the codes the subcommands return."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from touchstream.cli import exits
from touchstream.cli.errors import _translate
from touchstream.cli.exits import EXIT_CODES, Exit

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "touchstream" / "cli"


def test_readme_documents_the_exit_codes_from_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert exits.markdown_table() in readme, (
        "README's exit-code table differs from touchstream/cli/exits.py; paste:\n"
        + exits.markdown_table())


def test_every_exit_code_has_a_meaning() -> None:
    assert set(EXIT_CODES) == set(Exit)


@pytest.mark.parametrize("module", sorted(p.name for p in CLI.glob("*.py")))
def test_subcommands_return_codes_from_the_table_not_bare_numbers(module: str) -> None:
    tree = ast.parse((CLI / module).read_text(encoding="utf-8"))
    bare = [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int) and not isinstance(node.value.value, bool)]
    assert not bare, f"{module} returns bare exit numbers at lines {bare}: use exits.Exit"


@pytest.mark.parametrize(("error", "code"), [
    ("commands.identity:InvalidContactPointError", Exit.USAGE),
    ("commands.hub:CustomerNotFoundError", Exit.NOT_FOUND),
    ("touchstream.adapters.keys:UnknownKeyError", Exit.NOT_FOUND),
    ("touchstream.adapters.keys:UnknownRoleError", Exit.USAGE),
    ("domain.errors:InvalidTransitionError", Exit.CONFLICT),
    ("commands.hub:ConflictError", Exit.CONFLICT),
    ("projections.store:ReadStoreError", Exit.STORE),
])
def test_errors_translate_to_their_documented_code(error: str, code: Exit) -> None:
    import importlib

    module, name = error.split(":")
    cls = getattr(importlib.import_module(module), name)
    translated = _translate(cls("boom"))
    assert translated is not None and translated[0] == code


def test_an_unexpected_error_is_not_swallowed() -> None:
    assert _translate(RuntimeError("bug")) is None


def test_a_damaged_event_store_has_its_own_code_not_the_mail_servers() -> None:
    from projections.faults import DamagedEventError

    translated = _translate(DamagedEventError(7, "Customer.CallLogged", "not JSON"))
    assert translated is not None and translated[0] == Exit.DAMAGED
    assert Exit.DAMAGED != Exit.SERVER
