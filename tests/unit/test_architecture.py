"""Dependencies point inward: checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"domain", "commands", "projections", "channels", "read_api", "replays", "touchstream"}

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
# third-party modules a layer must never touch
FORBIDDEN_THIRD_PARTY = {
    "domain": {"fastapi", "starlette", "psycopg", "sqlite3", "pydantic", "socket", "imapclient",
               "aiosmtplib", "requests", "httpx", "kurrentdbclient", "os", "time"},
    "commands": {"fastapi", "starlette", "psycopg", "sqlite3", "imapclient", "aiosmtplib"},
    "read_api": {"commands"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            out.append((package, path))
    return out


@pytest.mark.parametrize(("package", "path"), modules(), ids=lambda v: str(v))
def test_layers_import_only_inward(package: str, path: Path) -> None:
    for name in imports_of(path):
        top = name.split(".")[0]
        if top in OURS:
            assert top in ALLOWED[package], f"{path.relative_to(ROOT)} imports {name}"
        assert top not in FORBIDDEN_THIRD_PARTY.get(package, set()), (
            f"{path.relative_to(ROOT)} imports {name}"
        )


def test_channels_never_import_each_other() -> None:
    for path in (ROOT / "channels").rglob("*.py"):
        rel = path.relative_to(ROOT / "channels").parts
        if len(rel) < 2:
            continue
        own = rel[0]
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "channels" and len(parts) > 1 and parts[1] in {"email", "web", "phone"}:
                assert parts[1] == own, f"channels/{'/'.join(rel)} imports {name}"
