"""Pausing, resuming and cancelling a send under way, against a running server."""

from __future__ import annotations

import json
import re
import smtplib
import time
from collections import Counter
from email.policy import SMTP
from pathlib import Path

import pytest

from tests.integration.test_cli import mail2sms
from tests.integration.test_smtp_intake import email
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config

pytestmark = pytest.mark.integration


def submit(server: Mail2SmsServer, subject: str, text: str) -> int:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.login("alice@example.com", PASSWORD)
        client.mail("alice@example.com")
        client.rcpt("sms@sms.example.com")
        code, answer = client.data(email(subject, text).as_bytes(policy=SMTP))
    assert code == 250, answer
    match = re.search(rb"request #(\d+)", answer)
    assert match, answer
    return int(match.group(1))


def sent(server: Mail2SmsServer) -> list[str]:
    path = Path(server.config["gateway"]["outbox_file"])
    if not path.exists():
        return []
    return [json.loads(line)["to"] for line in path.read_text().splitlines() if line.strip()]


def sends(server: Mail2SmsServer, *args: str):  # type: ignore[no-untyped-def]
    return mail2sms("sends", *args, "--config", str(server.config_path), cwd=server.tmp)


def wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_pause_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    config = base_config(tmp_path, gateway={"driver": "console", "rate_per_second": 20,
                                            "outbox_file": str(tmp_path / "sent.jsonl")})
    numbers = [f"+3365{i:07d}" for i in range(60)]
    with Mail2SmsServer(tmp_path, config) as server:
        request_id = submit(server, ", ".join(numbers), "Information importante")
        wait(lambda: len(sent(server)) >= 5, 10, "the send did not start")
        paused = sends(server, "pause", str(request_id))
        assert paused.returncode == 0, paused.stderr
        assert "paused" in paused.stdout
        time.sleep(0.5)  # calls already with the gateway finish
        at_pause = len(sent(server))
        time.sleep(1.5)
        assert len(sent(server)) == at_pause, "messages went out while paused"
        assert at_pause < 60
        resumed = sends(server, "resume", str(request_id))
        assert resumed.returncode == 0 and "resumed" in resumed.stdout
        wait(lambda: len(sent(server)) >= 60, 20, "not every message went out after resume")
        time.sleep(0.5)
    counts = Counter(sent(server))
    assert sorted(counts) == sorted(numbers)
    assert set(counts.values()) == {1}


def test_cancel_a_deferred_send(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    with Mail2SmsServer(tmp_path, config) as server:
        request_id = submit(server, "06 12 34 56 78, 07 51 22 33 44 [at:2099-01-01 09:00]",
                            "Rappel")
        cancelled = sends(server, "cancel", str(request_id), "--by", "alice")
        assert cancelled.returncode == 0, cancelled.stderr
        assert "2 message(s) cancelled" in cancelled.stdout
        assert "2 cancelled" in cancelled.stdout
        resumed = sends(server, "resume", str(request_id))
        assert resumed.returncode == 1
        assert f"send #{request_id} is cancelled: it cannot be resumed" in resumed.stderr
        unknown = sends(server, "pause", "999999")
        assert unknown.returncode == 1 and "no send request 999999" in unknown.stderr
    assert sent(server) == []
