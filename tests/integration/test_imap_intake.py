"""The IMAP intake against a real Dovecot and a real ``mail2sms serve``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mail2sms.authresults import authenticated
from tests.integration.imap_fixtures import MAILBOX_PASSWORD, MAILBOX_USER, dovecot  # noqa: F401
from tests.servers.dovecot import DovecotServer
from tests.servers.mail2sms_server import Mail2SmsServer, base_config
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

PROCESSED = "mail2sms/processed"
ERRORS = "mail2sms/errors"
T = TypeVar("T")


def imap_config(tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink,  # noqa: F811
                **imap: Any) -> dict[str, Any]:
    return base_config(tmp_path, mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"}, imap={
        "enabled": True, "host": "127.0.0.1", "port": dovecot.port, "ssl": False,
        "username": MAILBOX_USER, "password": MAILBOX_PASSWORD, "poll_interval": 60,
        **imap,
    })


@pytest.fixture
def server(tmp_path: Path, dovecot: DovecotServer,  # noqa: F811
           smtp_sink: SmtpSink) -> Iterator[Mail2SmsServer]:
    """mail2sms watching the Dovecot mailbox over IDLE (not started: tests start it)."""
    srv = Mail2SmsServer(tmp_path, imap_config(tmp_path, dovecot, smtp_sink))
    try:
        yield srv
    finally:
        srv.stop()


def email(subject: str, body: str = "Réunion demain à 9h", *,
          sender: str = "alice@example.com", headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    for name, value in (headers or {}).items():
        msg[name] = value
    msg["From"] = sender
    msg["To"] = MAILBOX_USER
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content(body)
    return msg.as_bytes()


def wait_until(check: Callable[[], T], what: str, server: Mail2SmsServer,
               timeout: float = 10.0) -> T:
    """``check()`` once it is truthy; fails with the server's log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout} s\n{server.log}")
        time.sleep(0.05)


def sms_sent(server: Mail2SmsServer) -> list[dict]:
    path = Path(server.config["gateway"]["outbox_file"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def filed(dovecot: DovecotServer, folder: str) -> list[str]:  # noqa: F811
    return dovecot.list_folder(MAILBOX_USER, folder)


def test_email_from_a_user_becomes_an_sms_then_is_filed(
    server: Mail2SmsServer, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    raw = email("06 12 34 56 78")
    dovecot.deliver(MAILBOX_USER, raw)
    server.start()  # the email waiting before the start is taken too
    sms = wait_until(lambda: sms_sent(server), "the SMS", server)
    assert [(s["to"], s["text"]) for s in sms] == [("+33612345678", "Réunion demain à 9h")]
    wait_until(lambda: filed(dovecot, PROCESSED), "the email in the processed folder", server)
    assert filed(dovecot, "INBOX") == []
    [stored] = dovecot.messages(MAILBOX_USER, PROCESSED)
    assert {"\\Seen", "$Mail2SmsDone"} <= stored.flags
    assert stored.raw.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    report = smtp_sink.wait_for(1)[0]
    assert report.rcpt_tos == ["alice@example.com"]
    assert "Queued: 1 SMS" in report.message.get_content()
    assert "IMAP intake watching" in server.log and "IDLE" in server.log


def test_unknown_sender_is_filed_as_error_without_sms_or_report(
    server: Mail2SmsServer, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    server.start()
    dovecot.deliver(MAILBOX_USER, email("06 12 34 56 78", sender="mallory@example.org"))
    wait_until(lambda: filed(dovecot, ERRORS), "the email in the error folder", server)
    time.sleep(0.5)  # a report or an SMS would have been on its way by now
    assert sms_sent(server) == [] and smtp_sink.messages == []
    assert filed(dovecot, PROCESSED) == [] and filed(dovecot, "INBOX") == []
    assert "mallory@example.org is not a configured user" in server.log


def test_unreadable_email_from_a_user_is_filed_as_error_with_a_report(
    server: Mail2SmsServer, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    server.start()
    dovecot.deliver(MAILBOX_USER, email("no number here"))
    wait_until(lambda: filed(dovecot, ERRORS), "the email in the error folder", server)
    report = smtp_sink.wait_for(1)[0]
    assert report.rcpt_tos == ["alice@example.com"]
    body = report.message.get_content()
    assert "NOT sent" in body and "no recipient" in body
    assert sms_sent(server) == []
    [stored] = dovecot.messages(MAILBOX_USER, ERRORS)
    assert {"\\Seen", "$Mail2SmsRefused"} <= stored.flags


def test_restart_processes_nothing_twice(
    server: Mail2SmsServer, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    first, second = email("0612345678"), email("0612345679")
    dovecot.deliver(MAILBOX_USER, first)
    dovecot.deliver(MAILBOX_USER, second)
    server.start()
    wait_until(lambda: len(filed(dovecot, PROCESSED)) == 2, "both emails filed", server)
    assert len(wait_until(lambda: sms_sent(server), "the SMS", server)) == 2
    server.stop()
    # As after a crash: one email back in the mailbox, unflagged, although its request is
    # in the store (crash after the commit); another flagged but not moved yet.
    dovecot.deliver(MAILBOX_USER, first)
    dovecot.deliver(MAILBOX_USER, second)
    with dovecot.imap(MAILBOX_USER) as client:
        client.select("INBOX")
        client.store("2", "+FLAGS", "($Mail2SmsDone)")  # the second one, by position
    server.start()
    wait_until(lambda: len(filed(dovecot, PROCESSED)) == 4, "the copies filed", server)
    time.sleep(0.5)
    assert len(sms_sent(server)) == 2
    assert filed(dovecot, "INBOX") == []
    assert "already taken" in server.log and "finishing its move" in server.log
    assert len(smtp_sink.messages) == 2  # one report per email, none for the copies


def test_email_arriving_while_running_is_taken_at_once_over_idle(
    server: Mail2SmsServer, dovecot: DovecotServer  # noqa: F811
) -> None:
    server.start()
    wait_until(lambda: "IMAP intake watching" in server.log, "the intake ready", server)
    time.sleep(0.3)  # into IDLE; the 60 s poll interval cannot be what finds the email
    started = time.monotonic()
    dovecot.deliver(MAILBOX_USER, email("06 12 34 56 78"))
    wait_until(lambda: sms_sent(server), "the SMS", server, timeout=5)
    assert time.monotonic() - started < 3


def test_polling_over_imaps_when_idle_is_off(
    tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    config = imap_config(tmp_path, dovecot, smtp_sink, idle=False, poll_interval=1,
                         ssl=True, port=dovecot.ssl_port, ca_file=str(dovecot.cert_file))
    with Mail2SmsServer(tmp_path, config) as server:
        wait_until(lambda: "polling every 1 s" in server.log, "the intake ready", server)
        dovecot.deliver(MAILBOX_USER, email("06 12 34 56 78"))
        wait_until(lambda: sms_sent(server), "the SMS", server, timeout=5)
        wait_until(lambda: filed(dovecot, PROCESSED), "the email filed", server)


def test_intake_reconnects_after_the_imap_server_restarts(
    server: Mail2SmsServer, dovecot: DovecotServer  # noqa: F811
) -> None:
    server.start()
    wait_until(lambda: "IMAP intake watching" in server.log, "the intake ready", server)
    dovecot.restart()
    wait_until(lambda: server.log.count("IMAP intake watching") == 2, "a new session",
               server, timeout=15)
    assert "reconnecting in" in server.log
    dovecot.deliver(MAILBOX_USER, email("06 12 34 56 78"))
    wait_until(lambda: sms_sent(server), "the SMS after the reconnection", server)


def test_trusted_authentication_results_and_automatic_replies(
    tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    trusted = "mx.example.com"
    good = {"Authentication-Results": f"{trusted}; dkim=pass (good) header.d=example.com "
                                      "header.s=s1; spf=fail smtp.mailfrom=example.com"}
    forged = {"Authentication-Results": "mx.elsewhere.net; dkim=pass header.d=example.com"}
    wrong_domain = {"Authentication-Results": f"{trusted}; dkim=pass header.d=evil.example; "
                                              "spf=pass smtp.mailfrom=bounce@evil.example"}
    dovecot.deliver(MAILBOX_USER, email("0612345678", "taken", headers=good))
    dovecot.deliver(MAILBOX_USER, email("0612345679", "forged", headers=forged))
    dovecot.deliver(MAILBOX_USER, email("0612345670", "misaligned", headers=wrong_domain))
    dovecot.deliver(MAILBOX_USER, email("0612345671", "out of office",
                                        headers={**good, "Auto-Submitted": "auto-replied"}))
    config = imap_config(tmp_path, dovecot, smtp_sink, trusted_authserv_id=trusted)
    with Mail2SmsServer(tmp_path, config) as server:
        wait_until(lambda: len(filed(dovecot, ERRORS)) == 3, "three emails refused", server)
        wait_until(lambda: filed(dovecot, PROCESSED), "one email taken", server)
        assert [s["text"] for s in wait_until(lambda: sms_sent(server), "SMS", server)] == [
            "taken"]
        assert f"no Authentication-Results header from {trusted}" in server.log
        assert "show no dkim or spf pass for example.com" in server.log
        assert "automatic message (Auto-Submitted)" in server.log
    assert len(smtp_sink.messages) == 1  # the report of the taken one only


@pytest.mark.parametrize(("header", "taken"), [
    ("mx.example.com; spf=pass smtp.mailfrom=alice@example.com", True),
    ("mx.example.com 1; dkim=pass header.i=@mail.example.com; spf=none", True),
    ("MX.EXAMPLE.COM; dkim=fail header.d=example.com; spf=softfail", False),
    ("mx.example.com; dkim=pass header.d=example.com.evil.net", False),
    ("mx.example.com.evil.net; dkim=pass header.d=example.com", False),
])
def test_authentication_results_reading(header: str, taken: bool) -> None:
    headers = Message()
    headers["Authentication-Results"] = header
    assert (authenticated(headers, "mx.example.com", "example.com") is None) is taken


def test_only_the_topmost_result_of_the_trusted_server_counts() -> None:
    headers = Message()
    headers["Authentication-Results"] = "mx.example.com; dkim=none; spf=fail"
    headers["Authentication-Results"] = "mx.example.com; dkim=pass header.d=example.com"
    assert authenticated(headers, "mx.example.com", "example.com") is not None


@pytest.mark.parametrize("dovecot", [{"capability": "IMAP4rev1 LITERAL+"}], indirect=True)
def test_server_without_idle_move_or_uidplus(
    tmp_path: Path, dovecot: DovecotServer, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    dovecot.deliver(MAILBOX_USER, email("06 12 34 56 78"))
    dovecot.deliver(MAILBOX_USER, email("06 12 34 56 78", sender="mallory@example.org"))
    config = imap_config(tmp_path, dovecot, smtp_sink, poll_interval=1)
    with Mail2SmsServer(tmp_path, config) as server:
        wait_until(lambda: len(filed(dovecot, PROCESSED)) == 1
                   and len(filed(dovecot, ERRORS)) == 1, "both emails filed", server)
        assert "polling every 1 s" in server.log  # idle asked for, but not offered
        wait_until(lambda: filed(dovecot, "INBOX") == [], "the originals expunged", server)
        dovecot.deliver(MAILBOX_USER, email("06 12 34 56 79"))
        wait_until(lambda: len(filed(dovecot, PROCESSED)) == 2, "a new one polled", server)
        assert len(wait_until(lambda: sms_sent(server), "the SMS", server)) == 2
    assert all("\\Seen" in flags and "\\Deleted" not in flags
               for flags in dovecot.flags(MAILBOX_USER, PROCESSED))
