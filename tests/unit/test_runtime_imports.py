"""The benchmark harness, the test Dovecot launcher and the demo data stay off the runtime
import path: serving, bootstrapping and parsing the CLI never load them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from touchstream import bench, demo
from touchstream.cli import build_parser
from touchstream.cli.bench import SCENARIO_NAMES

OFF_PATH = ("touchstream.bench", "touchstream.demo", "tests")

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
if "touchstream.cli" in sys.argv[1:]:
    from touchstream.cli import build_parser
    build_parser()
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by(*modules: str) -> list[str]:
    """Modules in ``sys.modules`` after importing ``modules`` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True,
                          text=True, check=True)
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("entry", [
    ("touchstream.app", "touchstream.serve", "touchstream.bootstrap"),
    ("touchstream.read_side", "touchstream.channel_routes", "touchstream.email_wiring"),
    ("touchstream.cli",),
], ids=lambda e: "+".join(e))
def test_entry_points_do_not_import_bench_dovecot_or_demo(entry: tuple[str, ...]) -> None:
    loaded = loaded_by(*entry)
    assert set(entry) <= set(loaded)  # the probe really imported them
    stray = [m for m in loaded if m.startswith(OFF_PATH)]
    assert stray == []


def test_the_cli_lists_every_bench_scenario_without_loading_them() -> None:
    assert tuple(bench.scenario_name(s) for s in bench.SCENARIOS) == SCENARIO_NAMES


def test_the_demo_help_states_the_demo_defaults() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["demo"].format_help()  # type: ignore[union-attr]
    text = " ".join(text.split())
    assert f"default {demo.DEFAULT_CUSTOMERS}; max {demo.MAX_CUSTOMERS}" in text
    assert f"default {demo.DEFAULT_UNTIL.isoformat()}" in text
