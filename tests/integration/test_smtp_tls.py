"""STARTTLS with a real certificate, and AUTH refused before TLS when required."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_smtp_intake import email, sent_sms
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config

pytestmark = pytest.mark.integration


def make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Mail2SmsServer]:
    cert, key = make_cert(tmp_path)
    config = base_config(tmp_path, smtp={"tls_cert": str(cert), "tls_key": str(key),
                                         "require_tls": True})
    with Mail2SmsServer(tmp_path, config) as srv:
        yield srv


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
    return context


def test_starttls_is_offered_and_required(tls_server: Mail2SmsServer) -> None:
    with smtplib.SMTP("127.0.0.1", tls_server.smtp_port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.docmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHgK")
        assert code == 530  # STARTTLS first
        code, _ = client.mail("alice@example.com")
        assert code == 530


def test_auth_and_send_after_starttls(tls_server: Mail2SmsServer) -> None:
    with smtplib.SMTP("127.0.0.1", tls_server.smtp_port, timeout=10) as client:
        client.starttls(context=client_context())
        client.ehlo()
        client.login("alice@example.com", PASSWORD)
        client.send_message(email("06 12 34 56 78", "Par TLS"))
    sms = sent_sms(tls_server, 1)[0]
    assert (sms["to"], sms["text"]) == ("+33612345678", "Par TLS")
