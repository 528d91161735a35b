"""Email settings: defaults, and clear refusals of values that cannot work."""

from __future__ import annotations

import pytest

from touchstream import settings
from touchstream.settings import SettingsError

BASE = {"TOUCHSTREAM_IMAP_HOST": "imap.example.com", "TOUCHSTREAM_IMAP_USER": "support"}


def test_nothing_configured_means_no_mailbox_and_no_relay() -> None:
    conf = settings.load({})
    assert conf.imap.config() is None
    assert conf.smtp.config() is None


def test_imap_defaults_to_tls_on_993_inbox_only_and_leaves_the_mailbox_untouched() -> None:
    cfg = settings.load(BASE).imap.config()
    assert cfg is not None
    assert (cfg.security, cfg.port, cfg.folders, cfg.after) == ("tls", 993, ("INBOX",), "none")
    assert cfg.account_name == "support@imap.example.com"


def test_smtp_port_follows_its_security_mode() -> None:
    for security, port in (("tls", 465), ("starttls", 587), ("plain", 25)):
        cfg = settings.load({"TOUCHSTREAM_SMTP_HOST": "smtp.example.com",
                             "TOUCHSTREAM_SMTP_SECURITY": security}).smtp.config()
        assert cfg is not None and cfg.port == port


def test_staff_entries_split_into_domains_and_addresses() -> None:
    rules = settings.load({"TOUCHSTREAM_EMAIL_STAFF": "shop.example, boss@gmail.com",
                           "TOUCHSTREAM_EMAIL_FAX_GATEWAYS": "fax.example"}).email.rules()
    assert rules.is_staff("Mia@Shop.Example") and rules.is_staff("boss@gmail.com")
    assert not rules.is_staff("ada@gmail.com")
    assert rules.is_fax_gateway("gw@fax.example")


@pytest.mark.parametrize(("name", "value"), [
    ("TOUCHSTREAM_IMAP_SECURITY", "ssl3"), ("TOUCHSTREAM_IMAP_AFTER", "delete"),
    ("TOUCHSTREAM_IMAP_PORT", "imap"), ("TOUCHSTREAM_IMAP_POLL_SECONDS", "-1"),
])
def test_unusable_values_are_refused_with_the_setting_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        settings.load({**BASE, name: value})


def test_a_host_without_a_user_is_refused() -> None:
    with pytest.raises(SettingsError, match="TOUCHSTREAM_IMAP_USER"):
        settings.load({"TOUCHSTREAM_IMAP_HOST": "imap.example.com"})


def test_fax_gateway_number_format_is_national_unless_set_and_refuses_other_values() -> None:
    assert settings.load({}).email.rules().fax_number_format == "national"
    rules = settings.load({"TOUCHSTREAM_EMAIL_FAX_NUMBERS": "International"}).email.rules()
    assert rules.fax_number_format == "international"
    with pytest.raises(SettingsError, match="TOUCHSTREAM_EMAIL_FAX_NUMBERS"):
        settings.load({"TOUCHSTREAM_EMAIL_FAX_NUMBERS": "e164"})
