"""The deployment examples under docs/deploy stay usable: the systemd units parse as INI
with the keys systemd needs, their command lines parse with the CLI, and the example
settings file names only real settings."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from touchstream import settings as settings_mod
from touchstream.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["touchstream-api.service", "touchstream-projections.service"])
def test_systemd_unit_parses_with_the_expected_keys(name: str) -> None:
    u = unit(name)
    assert {"Unit", "Service", "Install"} <= set(u.sections())
    service = u["Service"]
    for key in ("ExecStart", "EnvironmentFile", "User", "KillSignal", "TimeoutStopSec",
                "Restart"):
        assert service.get(key), key
    assert service["KillSignal"] == "SIGTERM"
    # systemd must wait longer than the drain before it sends SIGKILL
    grace = settings_mod.load({}).operations.shutdown_grace
    assert int(service["TimeoutStopSec"]) > grace + 30
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/touchstream")
    args = build_parser().parse_args(argv[1:])  # the command line is one the CLI accepts
    assert callable(args.func)
    assert u["Install"]["WantedBy"] == "multi-user.target"


def test_example_settings_are_all_known_settings() -> None:
    known = {cls.env_name(name) for cls in settings_mod.SECTIONS.values()
             for name in cls.model_fields}
    lines = [line for line in (DEPLOY / "api.env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    names = {line.split("=", 1)[0] for line in lines}
    assert names <= known, names - known
    assert {"TOUCHSTREAM_EVENT_STORE", "TOUCHSTREAM_READ_STORE", "TOUCHSTREAM_MASTER_KEY"} <= names
