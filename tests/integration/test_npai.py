"""NPAI against a running server: "unassigned" reports through Kannel and through the
generic webhook flag a number, later sends skip it, and `npai clear` lets it through."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from campaigns.plan import NPAI_REASON
from store.db import Database
from store.models import Message
from tests.integration.test_cli import mail2sms
from tests.integration.test_credit import smtp_send
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

NUMBER = "+33612345678"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def statuses(db: Database, number: str = NUMBER) -> list[tuple[str, str | None]]:
    return db.run_sync(lambda s: [(m.status, m.reason) for m in s.exec(
        select(Message).where(Message.to == number).order_by(Message.id))])


def npai(server: Mail2SmsServer, *args: str):  # type: ignore[no-untyped-def]
    return mail2sms("npai", *args, "--config", str(server.config_path), cwd=server.tmp)


def test_unassigned_twice_through_kannel_flags_skips_and_clears(
    tmp_path: Path, kannel: KannelStack, fake_operator: FakeOperator, smtp_sink: SmtpSink
) -> None:
    config = base_config(
        tmp_path,
        gateway={"driver": "kannel", "url": kannel.sendsms_url, "username": kannel.username,
                 "password": kannel.password, "rate_per_second": 200, "timeout": 5},
        mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"},
    )
    with Mail2SmsServer(tmp_path, config) as server:
        db = Database(server.db_url, create=False)
        try:
            # 1st: the network's receipt says unassigned (SMPP err:001), through Kannel
            assert smtp_send(server, "06 12 34 56 78", "Premier") == (250, "")
            [mt] = fake_operator.wait_for(1)
            receipt = (f"id:{mt.dlr_mid} sub:001 dlvrd:000 submit date:2612011200 done "
                       "date:2612011200 stat:UNDELIV err:001 text:Premier")
            assert fake_operator.send_dlr(mt, 2, answer=receipt).status == 202
            wait_until(lambda: [s for s, _ in statuses(db)] == ["failed"], "1st not failed")
            listed = npai(server, "list")
            assert listed.returncode == 0 and "no number is flagged" in listed.stdout
            once = npai(server, "list", "--all").stdout
            assert NUMBER in once and "not flagged" in once and "err:001" in once

            # 2nd: the operator refuses the number; Kannel reports it as a NACK (16)
            fake_operator.fail(500, "Invalid Destination Address")
            assert smtp_send(server, "06 12 34 56 78", "Second") == (250, "")
            wait_until(lambda: [s for s, _ in statuses(db)] == ["failed", "failed"],
                       f"2nd not failed: {statuses(db)}")
            wait_until(lambda: "flagged as unassigned" in server.log, "flag not logged")
            assert "+336******78" in server.log and NUMBER not in server.log
            listed = npai(server, "list")
            [header, row] = listed.stdout.splitlines()
            assert header.split()[:4] == ["number", "in", "a", "row"]
            assert row.split()[:2] == [NUMBER, "2"]
            assert "Invalid Destination Address" in row

            # 3rd: skipped, with the reason, in the database and in the report
            fake_operator.reset()
            smtp_sink.clear()
            assert smtp_send(server, "06 12 34 56 78, 07 51 22 33 44", "Troisième") == (250, "")
            wait_until(lambda: len(statuses(db)) == 3, "3rd not queued")
            assert statuses(db)[-1] == ("skipped", NPAI_REASON)
            [report] = smtp_sink.wait_for(1)
            assert f"06 12 34 56 78: {NPAI_REASON}" in report.message.get_content()
            [mt] = fake_operator.wait_for(1)
            assert mt.to.endswith("33751223344")  # only the other number went out

            # cleared: sent to again
            cleared = npai(server, "clear", "06 12 34 56 78")
            assert cleared.returncode == 0 and "cleared" in cleared.stdout
            assert npai(server, "clear", "06 12 34 56 78").returncode == 1
            assert smtp_send(server, "06 12 34 56 78", "Quatrième") == (250, "")
            mts = fake_operator.wait_for(2)
            assert mts[-1].to.endswith("33612345678") and mts[-1].text == "Quatrième"
        finally:
            db.close()


def test_generic_webhook_reports_flag_the_number(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    with Mail2SmsServer(tmp_path, config) as server:
        db = Database(server.db_url, create=False)
        try:
            for n in range(2):
                assert smtp_send(server, "06 12 34 56 78", f"Message {n}") == (250, "")
            outbox = Path(config["gateway"]["outbox_file"])
            wait_until(lambda: outbox.exists() and len(outbox.read_text().splitlines()) == 2,
                       "not sent")
            ids = [json.loads(line)["id"] for line in outbox.read_text().splitlines()]
            reports = [{"id": i, "status": "UNDELIV", "detail": "Unknown subscriber"}
                       for i in ids]
            answer = httpx.post(f"{server.http_url}/webhooks/dlr",
                                params={"token": "test-token"}, json=reports, timeout=10)
            assert answer.status_code == 200, answer.text
            assert [r["status"] for r in answer.json()["results"]] == ["failed", "failed"]
            assert "Unknown subscriber" in npai(server, "list").stdout
            assert smtp_send(server, "06 12 34 56 78", "Encore") == (250, "")
            wait_until(lambda: len(statuses(db)) == 3, "3rd not queued")
            assert statuses(db)[-1] == ("skipped", NPAI_REASON)
        finally:
            db.close()
