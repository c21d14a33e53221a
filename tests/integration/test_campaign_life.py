"""Campaign life on SQLite and PostgreSQL: statuses, drafts, pause, resume, cancel,
release; in the store, then through the CLI against a running server."""

from __future__ import annotations

import json
import smtplib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store import queries, sends
from store.campaigns import campaign_status, list_campaigns
from store.db import make_engine, session_scope
from store.models import Message, MessageStatus
from tests.integration.test_cli import mail2sms
from tests.integration.test_smtp_intake import email
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

ALICE = "alice@example.com"


# --- the store ---------------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def request(engine: Engine, *statuses: str, user: str = ALICE, category: str = "alert",
            not_before: datetime | None = None) -> int:
    """A request with one message per status given, as intake writes them."""
    with session_scope(engine) as session:
        return queries.insert_request(
            session, {"user": user, "source": "cli", "text": "Bonjour", "category": category},
            [{"to": f"+336500000{i:02d}", "status": s, "segments": 2, "not_before": not_before}
             for i, s in enumerate(statuses)])


def in_session(engine: Engine, fn: Callable[[Session], Any]) -> Any:
    with session_scope(engine) as session:
        return fn(session)


def take(engine: Engine, request_id: int, count: int, status: str = "submitted") -> None:
    """What the dispatcher does: ``count`` waiting messages go to ``status``."""
    with session_scope(engine) as session:
        ids = list(session.exec(select(Message.id).where(Message.request_id == request_id)
                                .where(col(Message.status) == "queued").limit(count)))
        session.execute(update(Message).where(col(Message.id).in_(ids)).values(status=status))


def status(engine: Engine, request_id: int) -> str:
    found = in_session(engine, lambda s: campaign_status(s, request_id))
    assert found is not None
    return str(found.status)


def message_statuses(engine: Engine, request_id: int) -> Counter[str]:
    return Counter(in_session(engine, lambda s: list(s.exec(
        select(Message.status).where(Message.request_id == request_id)))))


def test_statuses_and_changes_in_the_store(engine: Engine) -> None:
    rid = request(engine, "queued", "queued", "queued", "skipped")
    assert status(engine, rid) == "ready"
    take(engine, rid, 1)
    assert status(engine, rid) == "sending"

    paused = in_session(engine, lambda s: sends.pause(s, rid))
    assert (paused.changed, paused.before, paused.campaign.status) == (2, "sending", "paused")
    assert message_statuses(engine, rid) == {"paused": 2, "submitted": 1, "skipped": 1}
    with pytest.raises(sends.NotAllowed, match=f"send #{rid} is paused: it cannot be paused"):
        in_session(engine, lambda s: sends.pause(s, rid))
    with pytest.raises(sends.NotAllowed, match="is paused: it cannot be released"):
        in_session(engine, lambda s: sends.release(s, rid))

    resumed = in_session(engine, lambda s: sends.resume(s, rid))
    assert (resumed.changed, resumed.campaign.status) == (2, "sending")
    cancelled = in_session(engine, lambda s: sends.cancel(s, rid, "cancelled by test"))
    assert (cancelled.changed, cancelled.campaign.status, cancelled.campaign.taken) == (
        2, "cancelled", 1)
    assert cancelled.campaign.counts == {"queued": 0, "sent": 1, "delivered": 0, "failed": 0,
                                         "skipped": 1, "cancelled": 2}
    assert cancelled.campaign.segments == 2  # only the message that went costs
    with pytest.raises(sends.NotAllowed, match="is cancelled: it cannot be resumed"):
        in_session(engine, lambda s: sends.resume(s, rid))
    # a refused change leaves everything as it was
    assert message_statuses(engine, rid) == {"cancelled": 2, "submitted": 1, "skipped": 1}

    done = request(engine, "delivered", "failed", "skipped")
    assert status(engine, done) == "done"
    with pytest.raises(sends.NotAllowed, match="is done: it cannot be cancelled"):
        in_session(engine, lambda s: sends.cancel(s, done, "x"))
    with pytest.raises(sends.UnknownSend, match="no send request 999999"):
        in_session(engine, lambda s: sends.pause(s, 999_999))


def test_a_draft_is_held_then_released(engine: Engine) -> None:
    later = datetime.now(UTC) + timedelta(days=3)
    now_rid = request(engine, "queued", "queued")
    later_rid = request(engine, "deferred", not_before=later)
    for rid in (now_rid, later_rid):
        in_session(engine, lambda s, rid=rid: sends.hold_draft(s, rid))
        assert status(engine, rid) == "draft"
    with pytest.raises(sends.NotAllowed, match="is draft: it cannot be resumed"):
        in_session(engine, lambda s: sends.resume(s, now_rid))

    released = in_session(engine, lambda s: sends.release(s, now_rid))
    assert (released.before, released.changed, released.campaign.status) == ("draft", 2, "ready")
    assert message_statuses(engine, now_rid) == {"queued": 2}
    in_session(engine, lambda s: sends.release(s, later_rid))
    assert message_statuses(engine, later_rid) == {"deferred": 1}  # its time is to come


def test_a_marketing_draft_released_at_night_waits_for_the_window(engine: Engine) -> None:
    morning = datetime.now(UTC) + timedelta(hours=9)
    rid = request(engine, "queued", category="marketing")
    in_session(engine, lambda s: sends.hold_draft(s, rid))
    in_session(engine, lambda s: sends.release(s, rid, window=lambda _now: morning))
    [row] = in_session(engine, lambda s: list(s.exec(
        select(Message).where(Message.request_id == rid))))
    assert row.status == MessageStatus.DEFERRED
    not_before = row.not_before if row.not_before.tzinfo else row.not_before.replace(tzinfo=UTC)
    assert abs(not_before - morning) < timedelta(seconds=1)


def test_listing_filters(engine: Engine) -> None:
    ready = request(engine, "queued")
    done = request(engine, "delivered", user="bob@example.com")
    sending = request(engine, "submitted", "sending")
    draft = request(engine, "queued")
    in_session(engine, lambda s: sends.hold_draft(s, draft))
    with session_scope(engine) as session:
        refused = queries.insert_request(session, {"user": ALICE, "status": "refused",
                                                   "reason": "spam rule"}, [])

    def ids(**filters: Any) -> list[int]:
        return [c.id for c in in_session(engine, lambda s: list_campaigns(s, **filters))]

    assert ids() == [refused, draft, sending, done, ready]
    assert ids(status="ready") == [ready]
    assert ids(status="sending") == [sending]
    assert ids(status="draft") == [draft]
    assert ids(status="done") == [done]
    assert ids(status="refused") == [refused]
    assert ids(status="paused") == []
    assert ids(user="BOB@example.com") == [done]
    assert ids(limit=2) == [refused, draft]
    assert ids(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    with pytest.raises(ValueError, match="unknown status 'late'"):
        ids(status="late")


# --- the command line against a running server ----------------------------------------


def cli(server: Mail2SmsServer, *args: str) -> tuple[int, str, str]:
    done = mail2sms(*args, "--config", str(server.config_path), cwd=server.tmp)
    return done.returncode, done.stdout, done.stderr


def shown(server: Mail2SmsServer, request_id: int) -> dict[str, Any]:
    code, out, err = cli(server, "sends", "show", str(request_id), "--json")
    assert code == 0, err
    return dict(json.loads(out))


def outbox(server: Mail2SmsServer) -> list[str]:
    path = Path(server.config["gateway"]["outbox_file"])
    if not path.exists():
        return []
    return [json.loads(line)["to"] for line in path.read_text().splitlines() if line.strip()]


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def send_id(server: Mail2SmsServer, *args: str) -> int:
    code, out, err = cli(server, "send", "--as", ALICE, "--json", *args)
    assert code == 0, err
    code, out, err = cli(server, "sends", "list", "--json", "--limit", "1")
    assert code == 0, err
    return int(json.loads(out)[0]["id"])


def served(tmp_path: Path, db_url: str, rate: int = 1000) -> Mail2SmsServer:
    return Mail2SmsServer(tmp_path, base_config(
        tmp_path, database={"url": db_url}, gateway={"rate_per_second": rate}))


def test_draft_then_release_sends_it(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url) as server:
        code, _, err = cli(server, "send", "--as", ALICE, "--to", "06 12 34 56 78",
                           "--to", "07 51 22 33 44", "--text", "Soldes demain", "--draft")
        assert code == 0, err
        assert "nothing goes out until `mail2sms sends release" in err
        code, out, _ = cli(server, "sends", "list", "--status", "draft", "--json")
        [draft] = json.loads(out)
        assert draft["counts"]["queued"] == 2 and draft["segments"] == 2
        time.sleep(1.5)  # the dispatcher polls meanwhile: a draft stays put
        assert outbox(server) == []

        code, out, err = cli(server, "sends", "release", str(draft["id"]))
        assert code == 0, err
        assert f"send #{draft['id']}: 2 message(s) released; status ready" in out
        wait(lambda: len(outbox(server)) == 2, 15, "the released draft was not sent")
        wait(lambda: shown(server, draft["id"])["status"] == "done", 15, "never done")
        code, _, err = cli(server, "sends", "release", str(draft["id"]))
        assert code == 1 and f"send #{draft['id']} is done: it cannot be released" in err
    assert sorted(outbox(server)) == ["+33612345678", "+33751223344"]


SENT = 200


def test_pause_mid_send_then_resume_sends_each_once(tmp_path: Path, db_url: str) -> None:
    # enough that a command started on a busy machine still finds most of them waiting
    numbers = [f"+3365{i:07d}" for i in range(SENT)]
    with served(tmp_path, db_url, rate=20) as server:
        rid = send_id(server, *(arg for n in numbers for arg in ("--to", n)), "--text", "Info")
        wait(lambda: len(outbox(server)) >= 5, 15, "the send did not start")
        code, out, err = cli(server, "sends", "pause", str(rid))
        assert code == 0, err
        assert "status paused" in out
        # messages the dispatcher had already taken finish their gateway call
        wait(lambda: "sending" not in shown(server, rid)["by_status"], 10, "calls never ended")
        paused = shown(server, rid)
        wait(lambda: len(outbox(server)) == SENT - paused["counts"]["queued"], 5,
             "the outbox file does not match the messages sent")
        at_pause = len(outbox(server))
        time.sleep(1.5)
        assert len(outbox(server)) == at_pause < SENT, "messages went out while paused"
        assert paused["status"] == "paused"

        code, out, err = cli(server, "sends", "resume", str(rid))
        assert code == 0, err
        assert "status sending" in out
        wait(lambda: len(outbox(server)) >= SENT, 30, "not every message went out after resume")
        wait(lambda: shown(server, rid)["status"] == "done", 10, "never done")
        time.sleep(0.5)
    assert Counter(outbox(server)) == Counter(numbers)


def test_cancel_before_the_time(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url) as server:
        rid = send_id(server, "--to", "0612345678", "--to", "0751223344", "--text", "Rappel",
                      "--at", "2099-01-01 09:00")
        assert shown(server, rid)["status"] == "ready"
        code, out, err = cli(server, "sends", "cancel", str(rid), "--by", "alice")
        assert code == 0, err
        assert "2 message(s) cancelled; status cancelled" in out
        assert "0 message(s) had already gone to the gateway" in out
        code, _, err = cli(server, "sends", "cancel", str(rid))
        assert code == 1 and f"send #{rid} is cancelled" in err
        code, _, err = cli(server, "sends", "resume", str(rid))
        assert code == 1 and f"send #{rid} is cancelled: it cannot be resumed" in err
        code, out, _ = cli(server, "sends", "list", "--status", "cancelled")
        header, line = out.splitlines()
        assert header.startswith("id\tcreated\tuser\tcategory\tstatus\tqueued\tsent")
        fields = line.split("\t")
        assert (fields[0], *fields[2:5]) == (str(rid), ALICE, "alert", "cancelled")
    assert outbox(server) == []


def test_draft_by_email_says_how_to_release(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = base_config(tmp_path, mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"})
    with Mail2SmsServer(tmp_path, config) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.login(ALICE, PASSWORD)
            refused = client.sendmail(ALICE, ["sms@sms.example.com"], email(
                "06 12 34 56 78 [draft]", "Bonjour").as_bytes(policy=SMTP))
        assert refused == {}
        [report] = smtp_sink.wait_for(1)
        body = report.message.get_content()
        [rid] = [c["id"] for c in json.loads(cli(server, "sends", "list", "--json")[1])]
        assert "It is a DRAFT" in body
        assert f"mail2sms sends release {rid}" in body
        time.sleep(1)
        assert outbox(server) == []
        assert cli(server, "sends", "release", str(rid))[0] == 0
        wait(lambda: outbox(server) == ["+33612345678"], 10, "the draft was not sent")
