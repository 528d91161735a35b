"""The settings tree: documented in one place, read from the mapping given, every bad value
named at once, and a bad setting stops the CLI before it opens anything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from touchstream import settings
from touchstream.settings import SECTIONS, SettingsError, markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Variables that are not settings of the hub: test and benchmark servers, scripts/start.
NOT_SETTINGS = {"TOUCHSTREAM_BENCH_POSTGRES_URI", "TOUCHSTREAM_TEST_POSTGRES_URI",
                "TOUCHSTREAM_TEST_PLAIN_RECORDER", "TOUCHSTREAM_HOST", "TOUCHSTREAM_PORT"}


def all_names() -> set[str]:
    return {cls.env_name(f) for cls in SECTIONS.values() for f in cls.model_fields}


def test_the_readme_table_is_the_one_generated_from_the_settings() -> None:
    text = README.read_text()
    block = text.split("<!-- settings-table:start -->\n", 1)[1].split(
        "\n<!-- settings-table:end -->", 1)[0]
    assert block == markdown_table(), "regenerate it: python -m touchstream.settings"


def test_every_setting_has_a_description_and_every_documented_variable_exists() -> None:
    for cls in SECTIONS.values():
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.env_name(name)} is undocumented"
    mentioned = set(re.findall(r"TOUCHSTREAM_[A-Z0-9_]*[A-Z0-9]", README.read_text()))
    prefixes = {cls.model_config.get("env_prefix", "").rstrip("_") for cls in SECTIONS.values()}
    assert mentioned - all_names() - NOT_SETTINGS - prefixes == set()


def test_the_environment_names_of_before_are_kept() -> None:
    assert {"TOUCHSTREAM_DATA", "TOUCHSTREAM_EVENT_STORE", "TOUCHSTREAM_IMAP_POLL_SECONDS",
            "TOUCHSTREAM_IMAP_BACKOFF_MAX_SECONDS", "TOUCHSTREAM_FAX_ALLOW_PRIVATE_ADDRESSES",
            "TOUCHSTREAM_FORMS_TRUST_FORWARDED_FOR", "TOUCHSTREAM_PUBLIC_BASE_URL",
            "TOUCHSTREAM_CTI_WINDOW_S", "TOUCHSTREAM_CDR_TIMEZONE"} <= all_names()


def test_values_come_from_the_mapping_given_not_the_process_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOUCHSTREAM_DEFAULT_REGION", "DE")
    monkeypatch.setenv("TOUCHSTREAM_IMAP_HOST", "imap.example.com")
    conf = settings.load({"TOUCHSTREAM_DATA": str(tmp_path), "TOUCHSTREAM_EMAIL_STAFF": ""})
    assert conf.default_region is None and conf.imap.config() is None
    assert conf.event_store == f"sqlite:///{tmp_path / 'events.db'}"
    assert conf.email.staff == ()  # an empty variable counts as unset


def test_every_bad_value_is_named_in_one_error() -> None:
    with pytest.raises(SettingsError) as caught:
        settings.load({"TOUCHSTREAM_MAX_BODY_BYTES": "0", "TOUCHSTREAM_EVENT_STORE": "mysql://x",
                       "TOUCHSTREAM_CDR_TIMEZONE": "Mars/Olympus", "TOUCHSTREAM_SMTP_PORT": "x",
                       "TOUCHSTREAM_FAX_ALLOW_PRIVATE_ADDRESSES": "perhaps"})
    message = str(caught.value)
    for name in ("TOUCHSTREAM_MAX_BODY_BYTES", "TOUCHSTREAM_EVENT_STORE",
                 "TOUCHSTREAM_CDR_TIMEZONE", "TOUCHSTREAM_SMTP_PORT",
                 "TOUCHSTREAM_FAX_ALLOW_PRIVATE_ADDRESSES"):
        assert name in message


def test_secrets_stay_out_of_reprs() -> None:
    conf = settings.load({"TOUCHSTREAM_CTI_SECRET": "hunter2-hunter2", "TOUCHSTREAM_SMTP_HOST": "h",
                          "TOUCHSTREAM_SMTP_PASSWORD": "pa55word"})
    assert "hunter2" not in repr(conf) and "pa55word" not in repr(conf)
    assert conf.cti.config().secret == "hunter2-hunter2"
    assert conf.smtp.config().password == "pa55word"  # type: ignore[union-attr]


def test_a_form_file_is_read_and_checked_at_load(tmp_path: Path) -> None:
    good = tmp_path / "forms.json"
    good.write_text('{"hello": {"title": "Hello", "fields": [{"name": "email", '
                    '"label": "Email", "kind": "email"}]}}')
    conf = settings.load({"TOUCHSTREAM_FORMS_FILE": str(good)})
    assert list(conf.forms.config("s" * 16, None).forms) == ["hello"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": {"title": "Hello", "fields": [{"name": "note", "label": "N"}]}}')
    with pytest.raises(SettingsError, match="TOUCHSTREAM_FORMS_FILE"):
        settings.load({"TOUCHSTREAM_FORMS_FILE": str(bad)})


def test_a_bad_setting_stops_the_cli_with_exit_2_before_opening_a_store(tmp_path: Path) -> None:
    env = {**os.environ, "TOUCHSTREAM_DATA": str(tmp_path / "data"),
           "TOUCHSTREAM_IMAP_HOST": "imap.example.com", "TOUCHSTREAM_IMAP_USER": "u",
           "TOUCHSTREAM_IMAP_PORT": "imap"}
    done = subprocess.run([sys.executable, "-m", "touchstream.cli", "events",
                           "00000000-0000-0000-0000-000000000001"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "TOUCHSTREAM_IMAP_PORT" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()
