"""Email settings: defaults, and clear refusals of values that cannot work."""

from __future__ import annotations

import pytest

from touchstream import email_settings
from touchstream.settings import SettingsError

BASE = {"TOUCHSTREAM_IMAP_HOST": "imap.example.com", "TOUCHSTREAM_IMAP_USER": "support"}


def test_nothing_configured_means_no_mailbox_and_no_relay() -> None:
    assert email_settings.imap_config({}) is None
    assert email_settings.smtp_config({}) is None


def test_imap_defaults_to_tls_on_993_inbox_only_and_leaves_the_mailbox_untouched() -> None:
    cfg = email_settings.imap_config(BASE)
    assert cfg is not None
    assert (cfg.security, cfg.port, cfg.folders, cfg.after) == ("tls", 993, ("INBOX",), "none")
    assert cfg.account_name == "support@imap.example.com"


def test_staff_entries_split_into_domains_and_addresses() -> None:
    rules = email_settings.inbound_rules({"TOUCHSTREAM_EMAIL_STAFF": "shop.example, boss@gmail.com",
                                          "TOUCHSTREAM_EMAIL_FAX_GATEWAYS": "fax.example"})
    assert rules.is_staff("Mia@Shop.Example") and rules.is_staff("boss@gmail.com")
    assert not rules.is_staff("ada@gmail.com")
    assert rules.is_fax_gateway("gw@fax.example")


@pytest.mark.parametrize(("name", "value"), [
    ("TOUCHSTREAM_IMAP_SECURITY", "ssl3"), ("TOUCHSTREAM_IMAP_AFTER", "delete"),
    ("TOUCHSTREAM_IMAP_PORT", "imap"), ("TOUCHSTREAM_IMAP_POLL_SECONDS", "-1"),
])
def test_unusable_values_are_refused_with_the_setting_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        email_settings.imap_config({**BASE, name: value})


def test_a_host_without_a_user_is_refused() -> None:
    with pytest.raises(SettingsError, match="TOUCHSTREAM_IMAP_USER"):
        email_settings.imap_config({"TOUCHSTREAM_IMAP_HOST": "imap.example.com"})


def test_fax_gateway_number_format_is_national_unless_set_and_refuses_other_values() -> None:
    assert email_settings.inbound_rules({}).fax_number_format == "national"
    rules = email_settings.inbound_rules({"TOUCHSTREAM_EMAIL_FAX_NUMBERS": "International"})
    assert rules.fax_number_format == "international"
    with pytest.raises(SettingsError, match="TOUCHSTREAM_EMAIL_FAX_NUMBERS"):
        email_settings.inbound_rules({"TOUCHSTREAM_EMAIL_FAX_NUMBERS": "e164"})
