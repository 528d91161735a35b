"""Production always encrypts: only the benchmarks may build a hub with ``encrypt=False``.

``build_hub(..., encrypt=False)`` exists so ``touchstream bench`` can measure the
cost of encryption against the library's plain mapper on a fresh temporary
store. Any other module passing ``encrypt=`` fails here, and the default stays on.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from eventsourcing.persistence import Mapper

from touchstream import settings as settings_mod
from touchstream.privacy.mapper import PersonalDataMapper
from touchstream.wiring import build_hub

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "commands", "projections", "channels", "read_api", "replays", "touchstream")
BENCH = ROOT / "touchstream" / "bench"


def callers_passing_encrypt() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and any(k.arg == "encrypt" for k in node.keywords):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_benchmarks_build_an_unencrypted_hub() -> None:
    bench = str(BENCH.relative_to(ROOT))
    outside = [where for where in callers_passing_encrypt() if not where.startswith(bench)]
    assert outside == []
    assert callers_passing_encrypt(), "the benchmarks no longer compare against a plain hub"


def test_build_hub_encrypts_unless_told_otherwise(tmp_path: Path) -> None:
    assert inspect.signature(build_hub).parameters["encrypt"].default is True
    settings = settings_mod.load({"TOUCHSTREAM_DATA": str(tmp_path / "data")})
    hub = build_hub(settings)
    try:
        assert isinstance(hub.mapper, PersonalDataMapper)
    finally:
        hub.close()
    plain = build_hub(settings_mod.load({"TOUCHSTREAM_DATA": str(tmp_path / "plain")}),
                      encrypt=False)
    try:
        assert type(plain.mapper) is Mapper
    finally:
        plain.close()
