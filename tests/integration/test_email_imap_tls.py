"""IMAP over implicit TLS and over STARTTLS, certificate checked against a configured CA file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import store_env
from tests.support import dovecot as dv
from tests.support.hubs import make_hub
from tests.support.mail import all_events, message, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester


@pytest.fixture(scope="module")
def dovecot() -> Iterator[dv.Dovecot]:
    reason = dv.available() or (None if shutil.which("openssl") else "no openssl to make a cert")
    if reason:
        pytest.skip(reason)
    server = dv.Dovecot(tls=True)
    server.start()
    yield server
    server.destroy()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_ingest_over_tls_verifies_the_server_certificate(
    dovecot: dv.Dovecot, tmp_path: Path, security: str
) -> None:
    user = dovecot.new_user()
    dovecot.append(user, message(1))
    env = store_env("sqlite", tmp_path / "data")
    env.update({
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_SECURITY": security,
        "TOUCHSTREAM_IMAP_PORT": str(dovecot.tls_port if security == "tls" else dovecot.port),
        "TOUCHSTREAM_IMAP_USER": user, "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD,
        "TOUCHSTREAM_IMAP_CA_FILE": str(dovecot.ca_file), "TOUCHSTREAM_IMAP_TIMEOUT": "5",
    })
    hub = make_hub(env)
    try:
        (report,) = build_ingester(Dependencies(settings_mod.load(env), hub=hub)).run_once()
        assert report.recorded == 1
        assert len(of_type(all_events(hub), "EmailRecorded")) == 1
    finally:
        hub.close()


def test_a_certificate_the_client_does_not_trust_is_refused(
    dovecot: dv.Dovecot, tmp_path: Path
) -> None:
    import ssl

    from channels.email.imap import MailServerError

    env = store_env("sqlite", tmp_path / "data")
    env.update({
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_SECURITY": "tls",
        "TOUCHSTREAM_IMAP_PORT": str(dovecot.tls_port), "TOUCHSTREAM_IMAP_USER": "u1",
        "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD, "TOUCHSTREAM_IMAP_TIMEOUT": "5",
    })
    hub = make_hub(env)
    try:
        with pytest.raises(MailServerError) as caught:
            build_ingester(Dependencies(settings_mod.load(env), hub=hub)).run_once()
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    finally:
        hub.close()
