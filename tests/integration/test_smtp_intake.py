"""The SMTP intake, driven by real SMTP clients (smtplib, swaks) against ``mail2sms serve``."""

from __future__ import annotations

import json
import shutil
import smtplib
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Mail2SmsServer]:
    config = base_config(
        tmp_path,
        mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"},
        smtp={"max_message_bytes": 50_000},
    )
    with Mail2SmsServer(tmp_path, config) as srv:
        yield srv


def sent_sms(server: Mail2SmsServer, count: int, timeout: float = 10.0) -> list[dict]:
    """SMS the console gateway wrote, waiting (bounded) until there are ``count``."""
    path = Path(server.config["gateway"]["outbox_file"])
    deadline = time.monotonic() + timeout
    lines: list[dict] = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"{len(lines)} SMS sent after {timeout} s, expected {count}")


def email(subject: str, body: str, *, to: str = "sms@sms.example.com",
          sender: str = "alice@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<test-1@example.com>"
    msg.set_content(body)
    return msg


def connect(server: Mail2SmsServer) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
    client.ehlo("client.example.com")
    return client


def test_authenticated_email_becomes_an_sms_and_a_report(
    server: Mail2SmsServer, smtp_sink: SmtpSink
) -> None:
    with connect(server) as client:
        client.login("alice@example.com", PASSWORD)
        refused = client.send_message(email("06 12 34 56 78", "Réunion demain à 9h"))
        assert refused == {}
    sms = sent_sms(server, 1)
    assert sms[0]["to"] == "+33612345678"
    assert sms[0]["text"] == "Réunion demain à 9h"
    assert sms[0]["from"] == "36105"
    report = smtp_sink.wait_for(1)[0]
    assert report.rcpt_tos == ["alice@example.com"]
    assert report.message["In-Reply-To"] == "<test-1@example.com>"
    body = report.message.get_content()
    assert "1 SMS" in body and "Queued" in body


def test_number_as_local_part_and_login_mechanism(server: Mail2SmsServer) -> None:
    with connect(server) as client:
        client.user, client.password = "alice@example.com", PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        client.send_message(email("", "Hello from LOGIN", to="0751223344@sms.example.com"))
    assert sent_sms(server, 1)[0]["to"] == "+33751223344"


def test_mail_without_auth_gets_530(server: Mail2SmsServer) -> None:
    with connect(server) as client:
        code, _ = client.mail("alice@example.com")
        assert code == 530


def auth_plain(client: smtplib.SMTP, user: str, password: str) -> None:
    """One AUTH PLAIN attempt (smtplib's login() would try every mechanism)."""
    client.user, client.password = user, password
    client.auth("PLAIN", client.auth_plain)


def test_wrong_password_gets_535_then_throttled(server: Mail2SmsServer) -> None:
    with connect(server) as client:
        for _ in range(3):  # auth_max_failures in the test config
            with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
                auth_plain(client, "alice@example.com", "wrong")
            assert bad.value.smtp_code == 535
        # the right password no longer helps until the window has passed
        with pytest.raises(smtplib.SMTPAuthenticationError) as throttled:
            auth_plain(client, "alice@example.com", PASSWORD)
        assert throttled.value.smtp_code == 454
    # nor from another connection, since it counts per user too
    with connect(server) as other, pytest.raises(smtplib.SMTPAuthenticationError) as again:
        auth_plain(other, "alice@example.com", PASSWORD)
    assert again.value.smtp_code == 454


def test_unknown_user_gets_535(server: Mail2SmsServer) -> None:
    with connect(server) as client, pytest.raises(smtplib.SMTPAuthenticationError) as bad:
        client.login("mallory@example.com", PASSWORD)
    assert bad.value.smtp_code == 535


def test_never_an_open_relay(server: Mail2SmsServer) -> None:
    with connect(server) as client:
        client.login("alice@example.com", PASSWORD)
        client.mail("alice@example.com")
        code, text = client.rcpt("someone@gmail.com")
        assert code == 550
        assert b"relaying denied" in text


def test_oversize_message_gets_552(server: Mail2SmsServer) -> None:
    with connect(server) as client:
        client.login("alice@example.com", PASSWORD)
        with pytest.raises(smtplib.SMTPException) as too_big:
            client.send_message(email("0612345678", "x" * 60_000))
    assert "552" in str(too_big.value)


def test_no_recipient_is_refused_with_the_reason(
    server: Mail2SmsServer, smtp_sink: SmtpSink
) -> None:
    with connect(server) as client:
        client.login("alice@example.com", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(email("Hello there", "Some text"))
    assert refused.value.smtp_code >= 500
    assert b"recipient" in refused.value.smtp_error
    report = smtp_sink.wait_for(1)[0]
    assert "NOT sent" in report.message.get_content()


def test_skipped_numbers_are_reported(server: Mail2SmsServer, smtp_sink: SmtpSink) -> None:
    with connect(server) as client:
        client.login("alice@example.com", PASSWORD)
        client.send_message(
            email("0612345678, 01 42 68 53 00, +33 7 11 22 33 44, 12345", "Bonjour"))
    assert [s["to"] for s in sent_sms(server, 1)] == ["+33612345678"]
    body = smtp_sink.wait_for(1)[0].message.get_content()
    assert "01 42 68 53 00: landline" in body
    assert "+33 7 11 22 33 44: invalid number" in body
    assert '"12345"' in body and "not a number" in body


def test_swaks_sends_an_sms(server: Mail2SmsServer) -> None:
    assert shutil.which("swaks"), "swaks is missing: run make system-deps"
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.smtp_port}", "--auth", "PLAIN",
         "--auth-user", "bob@example.com", "--auth-password", PASSWORD,
         "--from", "bob@example.com", "--to", "sms@sms.example.com",
         "--header", "Subject: +33 6 11 22 33 44 [alert]", "--body", "Alerte: serveur en panne"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sms = sent_sms(server, 1)[0]
    assert sms["to"] == "+33611223344"
    assert sms["from"] == "ACME"
    assert sms["text"] == "Alerte: serveur en panne"


def test_serving_on_postgresql(tmp_path: Path, pg_url: str, smtp_sink: SmtpSink) -> None:
    config = base_config(tmp_path, database={"url": pg_url},
                         mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"})
    with Mail2SmsServer(tmp_path, config) as server:
        with connect(server) as client:
            client.login("alice@example.com", PASSWORD)
            client.send_message(email("06 12 34 56 78; 07 51 22 33 44", "Sur PostgreSQL"))
        sms = sent_sms(server, 2)
    assert sorted(s["to"] for s in sms) == ["+33612345678", "+33751223344"]
    assert "2 SMS" in smtp_sink.wait_for(1)[0].message.get_content()
