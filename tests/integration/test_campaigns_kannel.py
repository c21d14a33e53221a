"""Campaigns through real Kannel, with the server's clock set by the test (libfaketime).

Each test runs its own ``mail2sms serve`` in front of the module's Kannel and fake
operator, on a faked clock (`tests/servers/clock.py`): a Monday morning for a marketing
send inside the window, a Sunday for one that must wait, then jumps to just before the
next due time. Only the server (and the ``mail2sms`` commands the test runs against its
database) lives on that clock; Kannel, the operator and the test keep the real one.
"""

from __future__ import annotations

import csv
import re
import signal
import smtplib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.policy import SMTP
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from store.db import make_engine, session_scope
from store.models import Message, Schedule
from tests.integration.test_cli import mail2sms
from tests.integration.test_smtp_intake import email
from tests.servers.clock import FakeClock
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config
from tests.servers.operator import DLR_DELIVERED, FakeOperator, Mt
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
SUNDAY_11H = datetime(2026, 12, 6, 11, 0, tzinfo=PARIS)
MONDAY_8H = datetime(2026, 12, 7, 8, 0, tzinfo=PARIS)
MONDAY_10H = datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)
STOP = "STOP au 36105"  # compliance.stop_mention's default

FIRST_NAMES = ["Éloïse", "Chloé", "Jérôme", "Hélène", "François", "Zoë", "Noémie", "Gaël",
               "Anaïs", "Benoît", "Loïc", "Océane", "Jean", "Marie", "Ève", "Agnès"]


def notations(n: int) -> tuple[str, str]:
    """The n-th test number as E.164, and written in one of the usual notations."""
    digits = f"6{20000000 + n:08d}"  # 6 2x xx xx xx: a mobile, never a landline
    pairs = " ".join(digits[i:i + 2] for i in range(1, 9, 2))
    written = [f"0{digits[0]} {pairs}", f"+33 {digits[0]} {pairs}", f"0033{digits}",
               f"{digits[0]}.{pairs.replace(' ', '.')}", f"0{digits}"][n % 5]
    return f"+33{digits}", written


# --- the server on its clock ------------------------------------------------------------


@pytest.fixture
def clock(tmp_path: Path) -> FakeClock:
    return FakeClock(tmp_path / "faketime", MONDAY_10H)


@pytest.fixture
def make_server(
    tmp_path: Path, clock: FakeClock, kannel: KannelStack, smtp_sink: SmtpSink
) -> Iterator[Callable[..., Mail2SmsServer]]:
    """Start a server on the faked clock behind Kannel; `gateway` keys override."""
    servers: list[Mail2SmsServer] = []

    def make(**gateway: Any) -> Mail2SmsServer:
        config = base_config(
            tmp_path,
            gateway={"driver": "kannel", "url": kannel.sendsms_url,
                     "username": kannel.username, "password": kannel.password,
                     "rate_per_second": 500, "concurrency": 20, "timeout": 5, **gateway},
            mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"},
        )
        server = Mail2SmsServer(tmp_path, config, env=clock.env())
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


def run_cli(server: Mail2SmsServer, clock: FakeClock, *args: str) -> str:
    """A `mail2sms` command on the server's database, on the server's clock."""
    out = mail2sms(*args, "--config", str(server.config_path), cwd=server.tmp,
                   env=clock.env())
    assert out.returncode == 0, f"mail2sms {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def submit(server: Mail2SmsServer, subject: str, text: str,
           user: str = "alice@example.com") -> tuple[int, str]:
    """Send the email over SMTP; the request id and the 250 answer."""
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.login(user, PASSWORD)
        client.mail(user)
        client.rcpt("sms@sms.example.com")
        code, raw = client.data(email(subject, text, sender=user).as_bytes(policy=SMTP))
    answer = raw.decode()
    assert code == 250, answer
    match = re.search(r"request #(\d+)", answer)
    assert match, answer
    return int(match.group(1)), answer


def messages(server: Mail2SmsServer) -> list[Message]:
    engine = make_engine(server.db_url, create=False)
    try:
        with session_scope(engine) as s:
            return list(s.exec(select(Message).order_by(Message.id)))
    finally:
        engine.dispose()


def schedule_row(server: Mail2SmsServer, schedule_id: int) -> Schedule:
    engine = make_engine(server.db_url, create=False)
    try:
        with session_scope(engine) as s:
            row = s.get(Schedule, schedule_id)
            assert row is not None, f"no schedule #{schedule_id}"
            return row
    finally:
        engine.dispose()


def utc(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def wait_rows(server: Mail2SmsServer, wanted: set[str], count: int,
              timeout: float = 30.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    rows: list[Message] = []
    while time.monotonic() < deadline:
        rows = messages(server)
        if len(rows) == count and all(r.status in wanted for r in rows):
            return rows
        time.sleep(0.2)
    seen = Counter(r.status for r in rows)
    raise AssertionError(f"wanted {count} rows {sorted(wanted)} within {timeout} s, "
                         f"got {len(rows)}: {dict(seen)}\n--- server log ---\n{server.log}")


def wait_operator(operator: FakeOperator, server: Mail2SmsServer, n: int,
                  timeout: float = 30.0) -> list[Mt]:
    try:
        return operator.wait_for(n, timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- server log ---\n{server.log}") from None


def wait_log(server: Mail2SmsServer, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log:
        assert time.monotonic() < deadline, f"no {text!r} in the log in {timeout} s:\n{server.log}"
        time.sleep(0.05)


def quiet(operator: FakeOperator, seconds: float) -> int:
    """How many MTs arrived in the next `seconds` (expected: none)."""
    before = operator.count()
    time.sleep(seconds)
    return operator.count() - before


def by_number(mts: list[Mt]) -> Counter[str]:
    return Counter("+" + m.to.lstrip("+") for m in mts)


def import_club(server: Mail2SmsServer, clock: FakeClock, size: int) -> dict[str, str]:
    """`contacts import` of a CSV as an admin would have it; E.164 -> first name."""
    path = server.tmp / "club.csv"
    expected = {}
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["Prénom", "Nom", "Téléphone"])
        for n in range(size):
            number, written = notations(n)
            first = f"{FIRST_NAMES[n % len(FIRST_NAMES)]}"
            writer.writerow([first, f"Martin{n}", written])
            expected[number] = first
    out = run_cli(server, clock, "contacts", "import", str(path), "--group", "Club")
    assert str(size) in out, out
    return expected


# --- the tests --------------------------------------------------------------------------


def test_a_personalised_marketing_send_to_200_contacts_on_a_weekday(
    make_server: Callable[..., Mail2SmsServer], clock: FakeClock,
    fake_operator: FakeOperator, smtp_sink: SmtpSink,
) -> None:
    fake_operator.auto_dlr = DLR_DELIVERED
    server = make_server()
    club = import_club(server, clock, 200)

    _, answer = submit(server, "#Club [marketing]", "Bonjour {{ first_name }}",
                       user="bob@example.com")  # bob's sender is ACME: custom
    assert "200 queued" in answer

    wait_operator(fake_operator, server, 200)
    rows = wait_rows(server, {"delivered"}, 200)
    assert quiet(fake_operator, 0.5) == 0
    mts = fake_operator.messages
    assert by_number(mts) == Counter(list(club)), "not exactly one SMS per contact"
    for mt in mts:
        assert mt.sender == "ACME"
        assert mt.text == f"Bonjour {club['+' + mt.to.lstrip('+')]}\n{STOP}", mt
    assert {r.to for r in rows} == set(club)

    report = smtp_sink.wait_for(1)[0]
    assert report.rcpt_tos == ["bob@example.com"]
    body = report.message.get_content()
    assert "Queued: 200 SMS" in body and "200 queued" in str(report.message["Subject"])


def test_the_same_send_on_a_sunday_waits_for_monday_8h(
    make_server: Callable[..., Mail2SmsServer], clock: FakeClock,
    fake_operator: FakeOperator, smtp_sink: SmtpSink,
) -> None:
    clock.set(SUNDAY_11H)
    server = make_server()
    club = import_club(server, clock, 200)

    _, answer = submit(server, "#Club [marketing]", "Bonjour {{ first_name }}",
                       user="bob@example.com")
    assert "200 deferred" in answer
    rows = messages(server)
    assert len(rows) == 200 and {r.status for r in rows} == {"deferred"}
    assert {utc(r.not_before) for r in rows} == {MONDAY_8H.astimezone(UTC)}
    body = smtp_sink.wait_for(1)[0].message.get_content()
    assert "Deferred until Monday 07 December 2026 at 08:00 (Europe/Paris)" in body
    assert quiet(fake_operator, 2.0) == 0, "a deferred SMS left on Sunday"

    clock.set(datetime(2026, 12, 7, 7, 59, 58, tzinfo=PARIS))
    wait_operator(fake_operator, server, 200)
    rows = wait_rows(server, {"submitted", "delivered"}, 200)
    assert by_number(fake_operator.messages) == Counter(list(club))
    early = [r for r in rows if utc(r.submitted_at) < MONDAY_8H.astimezone(UTC)]
    assert not early, f"{len(early)} sent before 08:00, e.g. at {utc(early[0].submitted_at)}"


def test_a_daily_send_fires_twice_then_is_done(
    make_server: Callable[..., Mail2SmsServer], clock: FakeClock,
    fake_operator: FakeOperator,
) -> None:
    clock.set(datetime(2026, 12, 7, 7, 30, tzinfo=PARIS))
    server = make_server()
    numbers = {"+33620000001", "+33620000002"}
    out = run_cli(server, clock, "schedules", "add-periodic", "--name", "rappel",
                  "--to", "06 20 00 00 01", "--to", "+33 6 20 00 00 02",
                  "--text", "Rappel: permanence à 14h", "--every", "daily",
                  "--at", "09:00", "--times", "2", "--as", "alice@example.com")
    schedule_id = int(re.search(r"schedule #(\d+)", out).group(1))  # type: ignore[union-attr]
    server.send_signal(signal.SIGHUP)  # the server takes the new schedule now, not in 30 s
    wait_log(server, 'Added job "rappel"', timeout=5)

    for day, total in ((7, 2), (8, 4)):
        assert quiet(fake_operator, 1.0) == 0, f"a run before 09:00 on the {day}th"
        clock.set(datetime(2026, 12, day, 8, 59, 58, tzinfo=PARIS))
        server.send_signal(signal.SIGHUP)
        mts = wait_operator(fake_operator, server, total, timeout=20)
        assert by_number(mts) == Counter({n: total // 2 for n in numbers})
        assert all(m.text == "Rappel: permanence à 14h" for m in mts)

    row = schedule_row(server, schedule_id)
    assert (row.status, row.runs, row.next_run_at) == ("done", 2, None)

    clock.set(datetime(2026, 12, 9, 9, 0, 5, tzinfo=PARIS))
    server.send_signal(signal.SIGHUP)
    assert quiet(fake_operator, 2.0) == 0, "a third run of a schedule done after two"


def test_a_birthday_send_reaches_todays_birthdays_only(
    make_server: Callable[..., Mail2SmsServer], clock: FakeClock,
    fake_operator: FakeOperator,
) -> None:
    clock.set(datetime(2026, 12, 7, 7, 30, tzinfo=PARIS))
    server = make_server()
    path = server.tmp / "anniversaires.csv"
    path.write_text("Prénom;Téléphone;Date de naissance\n"
                    "Amélie;06 20 00 00 11;1990-12-07\n"
                    "Benoît;+33 6 20 00 00 12;07/12/1985\n"
                    "Céline;0033620000013;2001-12-07\n"
                    "Denis;06 20 00 00 14;1990-12-08\n"  # tomorrow
                    "Émile;06 20 00 00 15;1990-12-06\n"  # yesterday
                    "Fanny;06 20 00 00 16;1977-06-15\n"
                    "Gilles;06 20 00 00 17;\n", encoding="utf-8")
    run_cli(server, clock, "contacts", "import", str(path))
    run_cli(server, clock, "schedules", "add-event", "--name", "anniversaires",
            "--field", "birthday", "--days", "0", "--at", "09:00",
            "--text", "Joyeux anniversaire {{ first_name }}", "--as", "alice@example.com")
    server.send_signal(signal.SIGHUP)
    wait_log(server, 'Added job "anniversaires"', timeout=5)
    assert quiet(fake_operator, 0.5) == 0

    clock.set(datetime(2026, 12, 7, 8, 59, 58, tzinfo=PARIS))
    wait_operator(fake_operator, server, 3, timeout=20)
    assert quiet(fake_operator, 1.5) == 0
    mts = fake_operator.messages
    assert sorted(("+" + m.to.lstrip("+"), m.text) for m in mts) == [
        ("+33620000011", "Joyeux anniversaire Amélie"),
        ("+33620000012", "Joyeux anniversaire Benoît"),
        ("+33620000013", "Joyeux anniversaire Céline"),
    ]


def test_pause_and_resume_over_kannel_lose_and_repeat_nothing(
    make_server: Callable[..., Mail2SmsServer], clock: FakeClock,
    fake_operator: FakeOperator,
) -> None:
    fake_operator.auto_dlr = DLR_DELIVERED
    server = make_server(rate_per_second=50, concurrency=5)
    numbers = [notations(n) for n in range(300)]
    request_id, answer = submit(server, ", ".join(w for _, w in numbers),
                                "Coupure d'eau demain de 9h à 11h")
    assert "300 queued" in answer

    wait_operator(fake_operator, server, 40)
    out = run_cli(server, clock, "sends", "pause", str(request_id))
    assert "paused" in out
    time.sleep(0.5)  # calls already with Kannel finish
    at_pause = fake_operator.count()
    assert quiet(fake_operator, 2.0) == 0, "SMS went out while the send was paused"
    assert at_pause < 300
    paused = [r for r in messages(server) if r.status == "paused"]
    assert len(paused) == 300 - at_pause

    out = run_cli(server, clock, "sends", "resume", str(request_id))
    assert "resumed" in out
    wait_operator(fake_operator, server, 300)
    rows = wait_rows(server, {"delivered"}, 300)
    assert quiet(fake_operator, 1.0) == 0
    assert by_number(fake_operator.messages) == Counter(n for n, _ in numbers)
    assert sorted(r.to for r in rows) == sorted(n for n, _ in numbers)
