"""Mail to SMS through real Kannel: SMTP in, the fake operator receives the SMS, the DLR
comes back through Kannel, and a stopped Kannel loses and repeats nothing."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from store.db import make_engine, session_scope
from store.models import Message
from tests.integration.test_smtp_intake import email
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def server(
    tmp_path: Path, kannel: KannelStack, smtp_sink: SmtpSink
) -> Iterator[Mail2SmsServer]:
    config = base_config(
        tmp_path,
        gateway={"driver": "kannel", "url": kannel.sendsms_url, "username": kannel.username,
                 "password": kannel.password, "rate_per_second": 200, "timeout": 5},
        mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"},
    )
    with Mail2SmsServer(tmp_path, config) as srv:
        yield srv


def messages(server: Mail2SmsServer) -> list[Message]:
    engine = make_engine(server.db_url, create=False)
    try:
        with session_scope(engine) as s:
            return list(s.exec(select(Message).order_by(Message.id)))
    finally:
        engine.dispose()


def wait_statuses(server: Mail2SmsServer, wanted: set[str], count: int,
                  timeout: float = 20.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    rows: list[Message] = []
    while time.monotonic() < deadline:
        rows = messages(server)
        if len(rows) >= count and all(r.status in wanted for r in rows):
            return rows
        time.sleep(0.1)
    seen = [(r.id, r.status, r.reason) for r in rows]
    raise AssertionError(f"statuses after {timeout} s: {seen}")


def send(server: Mail2SmsServer, subject: str, body: str, user: str = "alice@example.com"
         ) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.login(user, PASSWORD)
        client.send_message(email(subject, body, sender=user))


def test_ucs2_sms_arrives_intact_and_is_delivered(
    server: Mail2SmsServer, fake_operator: FakeOperator, smtp_sink: SmtpSink
) -> None:
    fake_operator.auto_dlr = 1
    text = "Réunion demain à 9h ☕ 🎉 ça marche"
    send(server, "06 12 34 56 78", text)
    mt = fake_operator.wait_for(1)[0]
    assert mt.text == text
    assert mt.coding == 2
    assert mt.sender == "36105"
    assert mt.to.lstrip("+").endswith("33612345678")
    (row,) = wait_statuses(server, {"delivered"}, 1)
    assert row.encoding == "ucs2" and row.segments == 1
    report = smtp_sink.wait_for(1)[0].message.get_content()
    assert "UCS-2" in report


def test_gsm_sms_with_custom_sender_and_three_parts(
    server: Mail2SmsServer, fake_operator: FakeOperator
) -> None:
    fake_operator.auto_dlr = 1
    text = ("Bonjour, ceci est un long message d'information " * 8).strip()
    send(server, "+33 7 51 22 33 44 [from:ACME]", text)
    rows = wait_statuses(server, {"delivered"}, 1)
    assert rows[0].segments == 3 and rows[0].encoding == "gsm7"
    mts = fake_operator.wait_for(3)
    assert {m.sender for m in mts} == {"ACME"}
    assert all(m.concat is not None for m in mts)  # sent as one concatenated SMS
    parts = sorted(mts, key=lambda m: m.concat[2] if m.concat else 0)
    assert "".join(m.text for m in parts) == text


def test_failed_dlr_marks_the_message_failed(
    server: Mail2SmsServer, fake_operator: FakeOperator
) -> None:
    fake_operator.auto_dlr = 2
    send(server, "06 12 34 56 78", "Hello")
    (row,) = wait_statuses(server, {"failed", "expired"}, 1)
    assert row.status == "failed"


def test_kannel_down_then_back_loses_and_repeats_nothing(
    server: Mail2SmsServer, kannel: KannelStack, fake_operator: FakeOperator
) -> None:
    kannel.stop()
    numbers = [f"+3361122334{i}" for i in range(5)]
    for n, number in enumerate(numbers):
        send(server, number, f"Message {n} pendant la panne")  # each gets its 250
    # the dispatcher tried, failed transiently, and keeps the messages waiting
    deadline = time.monotonic() + 15
    rows = messages(server)
    while time.monotonic() < deadline and not all(r.attempts >= 1 for r in rows):
        time.sleep(0.1)
        rows = messages(server)
    assert len(rows) == 5
    assert all(r.status in ("queued", "sending") for r in rows), [r.status for r in rows]
    assert any(r.reason and "unreachable" in r.reason.lower() for r in rows), [
        r.reason for r in rows]
    assert fake_operator.count() == 0

    fake_operator.auto_dlr = 1
    kannel.start()
    wait_statuses(server, {"delivered"}, 5, timeout=60)
    time.sleep(1.0)  # room for a duplicate to show up, if there were one
    mts = fake_operator.messages
    assert sorted(m.to.lstrip("+") for m in mts) == sorted(n.lstrip("+") for n in numbers)
    assert sorted(m.text for m in mts) == sorted(f"Message {n} pendant la panne"
                                                 for n in range(5))


def test_crash_mid_dispatch_then_restart_sends_nothing_twice(
    tmp_path: Path, kannel: KannelStack, fake_operator: FakeOperator
) -> None:
    fake_operator.delay = 0.1  # keeps calls in flight when the process dies
    config = base_config(
        tmp_path,
        gateway={"driver": "kannel", "url": kannel.sendsms_url, "username": kannel.username,
                 "password": kannel.password, "rate_per_second": 100, "concurrency": 10,
                 "timeout": 5},
    )
    numbers = [f"+3365{i:07d}" for i in range(300)]
    server = Mail2SmsServer(tmp_path, config).start()
    try:
        send(server, ", ".join(numbers), "Coupure prévue demain de 9h à 11h")
        fake_operator.wait_for(60, timeout=30)
        server.kill()  # SIGKILL: no chance to release claims or record answers
        time.sleep(1.0)  # what was in flight reaches the operator, or not
        server.start()
        rows = wait_statuses(server, {"submitted", "uncertain"}, 300, timeout=60)
    finally:
        server.stop()
    received = [m.to.lstrip("+") for m in fake_operator.messages]
    assert len(received) == len(set(received)), "an SMS was sent twice"
    submitted = {r.to.lstrip("+") for r in rows if r.status == "submitted"}
    uncertain = [r for r in rows if r.status == "uncertain"]
    assert submitted <= set(received)
    assert len(submitted) + len(uncertain) == 300
    assert set(received) <= submitted | {r.to.lstrip("+") for r in uncertain}
    # Left uncertain, with a reason: only calls in flight (10 at most) and answers not
    # yet committed (20 ms of them) when the process died.
    assert 0 < len(uncertain) <= 20
    assert all(r.reason and "not resent" in r.reason for r in uncertain)
