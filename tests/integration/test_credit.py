"""Credit in segments against real servers: SQLite and PostgreSQL, the command line, and
a running server behind Kannel that gives credit back and mails one low-balance alert."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from campaigns.plan import UserPolicy
from campaigns.queue import queue_request
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from store import credit, queries, sends
from store.db import Database
from store.models import Message, SendRequestRow
from tests.integration.test_cli import mail2sms
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

POLICY = UserPolicy(email="alice@example.com")
LONG = "Rappel: " + "x" * 200  # two GSM-7 segments


def queue(session: Session, *numbers: str, text: str = "Bonjour"):  # type: ignore[no-untyped-def]
    req = SendRequest(user="alice@example.com", text=text, recipients=list(numbers),
                      source="cli")
    return queue_request(session, req, policy=POLICY, compliance=ComplianceConfig(),
                         shortcode="36105", credit_enabled=True)


def test_credit_is_taken_refused_and_given_back(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.run_sync(lambda s: credit.set_balance(s, 5, by="admin"))
        plan, first = db.run_sync(lambda s: queue(s, "0612345678", "0751223344", text=LONG))
        assert plan.refused is None and plan.credit_left == 1
        refused, second = db.run_sync(lambda s: queue(s, "0612345678", text=LONG))
        assert refused.refused == "not enough credit: this send needs 2 segments and 1 is left"
        assert db.run_sync(lambda s: queries.messages_of_request(s, second)) == []
        claimed = db.run_sync(lambda s: queries.claim_due(s, "me", 10, timedelta(minutes=5)))
        failed = claimed[0].id or 0
        db.run_sync(lambda s: queries.record_failures(s, [(failed, "invalid number")]))
        db.run_sync(lambda s: queries.record_failures(s, [(failed, "again")]))
        assert db.run_sync(credit.balance) == 3
        history = db.run_sync(credit.history)
        assert [(e.change, e.balance, e.reason) for e in history] == [
            (2, 3, "failed"), (-4, 1, "send"), (5, 5, "set")]
        assert history[1].request_id == first and history[2].by == "admin"
    finally:
        db.close()


def test_sends_at_once_never_spend_more_than_the_credit(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.run_sync(lambda s: credit.set_balance(s, 5))
        start = threading.Barrier(6)

        def one(n: int) -> bool:
            start.wait(10)
            plan, _ = db.run_sync(lambda s: queue(s, f"+3361234560{n}", text=LONG))
            return plan.refused is None

        with ThreadPoolExecutor(6) as pool:
            passed = list(pool.map(one, range(6)))
        assert passed.count(True) == 2
        assert db.run_sync(credit.balance) == 1
        charged = db.run_sync(lambda s: list(s.exec(select(Message))))
        assert len(charged) == 2 and all(m.charged for m in charged)
        requests = db.run_sync(lambda s: list(s.exec(select(SendRequestRow))))
        assert sorted(r.status for r in requests) == ["accepted"] * 2 + ["refused"] * 4
    finally:
        db.close()


def test_a_reservation_waits_for_the_other_and_then_fails_on_postgresql(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        db.run_sync(lambda s: credit.set_balance(s, 5))
        first_took = threading.Event()
        release = threading.Event()
        results: dict[str, Any] = {}

        def first(session: Session) -> None:
            results["first"] = credit.reserve(session, 3)
            first_took.set()
            release.wait(10)  # holds the row until the second is waiting on it

        def second() -> None:
            first_took.wait(10)
            started = time.monotonic()
            results["second"] = db.run_sync(lambda s: credit.reserve(s, 3))
            results["waited"] = time.monotonic() - started

        t1 = threading.Thread(target=lambda: db.run_sync(first))
        t2 = threading.Thread(target=second)
        t1.start()
        t2.start()
        time.sleep(0.5)
        assert "second" not in results  # blocked on the first's row lock
        release.set()
        t1.join(10)
        t2.join(10)
        assert results["first"] == 2
        assert results["second"] is None
        assert results["waited"] >= 0.4
        assert db.run_sync(credit.balance) == 2
    finally:
        db.close()


def test_cancel_gives_back_on_both_backends(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.run_sync(lambda s: credit.set_balance(s, 10))
        _, request_id = db.run_sync(lambda s: queue(s, "0612345678", "0751223344"))
        db.run_sync(lambda s: sends.cancel(s, request_id, "cancelled"))
        assert db.run_sync(credit.balance) == 10
        assert [e.reason for e in db.run_sync(credit.history)][:1] == ["cancelled"]
    finally:
        db.close()


# --- the command line ------------------------------------------------------------------


def _config(tmp_path: Path, **overrides: Any) -> Path:
    config = base_config(tmp_path, **{"credit": {"enabled": True}, **overrides})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_cli_send_larger_than_the_credit_is_refused_whole(tmp_path: Path) -> None:
    path = _config(tmp_path)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return mail2sms(*args, "--config", str(path), cwd=tmp_path)

    shown = run("credit", "show")
    assert shown.returncode == 0, shown.stderr
    assert "none set yet" in shown.stdout and "credit: enabled" in shown.stdout
    topped = run("credit", "add", "3", "--by", "compta")
    assert topped.returncode == 0 and "balance: 3 segment(s)" in topped.stdout
    args = ["send", "--as", "alice@example.com", "--to", "0612345678", "--to", "0751223344",
            "--text", LONG]
    dry = run(*args, "--dry-run")
    assert dry.returncode == 1
    reason = "not enough credit: this send needs 4 segments and 3 are left"
    assert reason in dry.stdout + dry.stderr
    sent = run(*args)
    assert sent.returncode == 1
    assert reason in sent.stdout + sent.stderr
    db = Database(yaml.safe_load(path.read_text())["database"]["url"], create=False)
    try:
        assert db.run_sync(lambda s: list(s.exec(select(Message)))) == []
        [row] = db.run_sync(lambda s: list(s.exec(select(SendRequestRow))))
        assert row.status == "refused" and row.reason == reason
    finally:
        db.close()
    ok = run("send", "--as", "alice@example.com", "--to", "0612345678", "--text", LONG)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    history = run("credit", "history")
    lines = history.stdout.splitlines()
    assert lines[0].split() == ["when", "change", "balance", "reason", "request", "by"]
    assert lines[1].split()[2:] == ["-2", "1", "send", "#2", "alice@example.com"]
    assert lines[2].split()[2:] == ["+3", "3", "topup", "compta"]
    assert run("credit", "set", "40").stdout.strip() == "balance: 40 segment(s)"
    assert "balance: 40 segment(s)" in run("credit", "show").stdout


def test_check_config_warns_of_an_alert_without_recipients(tmp_path: Path) -> None:
    path = _config(tmp_path, credit={"enabled": True, "alert_below": 100})
    checked = mail2sms("check-config", "--config", str(path), cwd=tmp_path)
    assert checked.returncode == 0
    assert "credit.alert_below: no alert will be sent: alert_to is empty" in checked.stderr


# --- a running server behind Kannel ------------------------------------------------------


def _email(subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "sms@sms.example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content(body)
    return msg


def smtp_send(server: Mail2SmsServer, subject: str, body: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.login("alice@example.com", PASSWORD)
        try:
            client.send_message(_email(subject, body))
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
    return 250, ""


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_server_gives_back_refused_sms_and_mails_one_alert(
    tmp_path: Path, kannel: KannelStack, fake_operator: FakeOperator, smtp_sink: SmtpSink
) -> None:
    config = base_config(
        tmp_path,
        gateway={"driver": "kannel", "url": kannel.sendsms_url, "username": kannel.username,
                 "password": kannel.password, "rate_per_second": 200, "timeout": 5},
        mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"},
        credit={"enabled": True, "alert_below": 8, "alert_to": ["ops@example.com"]},
    )
    server = Mail2SmsServer(tmp_path, config)
    server.config_path.write_text(yaml.safe_dump(config))
    assert mail2sms("credit", "set", "10", "--config", str(server.config_path),
                    cwd=tmp_path).returncode == 0
    db = Database(server.db_url, create=False)

    def alerts() -> list[Any]:
        return [m for m in smtp_sink.messages if "ops@example.com" in m.rcpt_tos]

    with server:
        fake_operator.auto_dlr = 1
        assert smtp_send(server, "06 12 34 56 78, 07 51 22 33 44, 07 51 22 33 55",
                         "Bonjour") == (250, "")
        wait_until(lambda: len(alerts()) == 1, f"no alert: {server.log[-2000:]}")
        [alert] = alerts()
        body = alert.message.get_content()
        assert "7 segment(s) left" in body and "threshold of 8" in body
        assert "mail2sms credit add" in body
        report = next(m for m in smtp_sink.messages if "alice@example.com" in m.rcpt_tos)
        assert "Credit: 3 segment(s) taken, 7 left." in report.message.get_content()

        # the operator refuses: Kannel reports it (16), the segments come back
        fake_operator.fail(500, "Submit failed")
        assert smtp_send(server, "06 11 22 33 44", LONG) == (250, "")
        wait_until(lambda: db.run_sync(lambda s: [m.status for m in s.exec(
            select(Message).where(Message.to == "+33611223344"))]) == ["failed"],
            "the refused SMS did not fail")
        wait_until(lambda: db.run_sync(credit.balance) == 7, "the segments did not come back")

        # still under the threshold: no second alert
        fake_operator.reset()
        assert smtp_send(server, "06 11 22 33 45", "Encore") == (250, "")
        wait_until(lambda: len([m for m in smtp_sink.messages
                                if "alice@example.com" in m.rcpt_tos]) == 3, "no 3rd report")
        assert db.run_sync(credit.balance) == 6
        # larger than what is left: refused at SMTP time with the numbers, nothing queued
        code, answer = smtp_send(server, "06 11 22 33 46", "y" * 1000)
        assert code == 550
        assert "not enough credit: this send needs 7 segments and 6 are left" in answer
        assert db.run_sync(lambda s: list(s.exec(
            select(Message).where(Message.to == "+33611223346")))) == []
        time.sleep(0.5)
        assert len(alerts()) == 1
    db.close()
