"""SMS in through real Kannel: STOP, keywords, a survey, replies mailed to staff and
answered by email, hostile MO input. The server is a real ``mail2sms serve`` whose
webhook is Kannel's get-url, and whose gateway is the same Kannel."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from store import inbound as store
from store.db import make_engine
from store.models import Inbound, Message, OptOut, SurveySession
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator, Mt
from tests.servers.smtp_sink import ReceivedMail, SmtpSink

pytestmark = pytest.mark.integration

PHONE = "+33612345678"
SHORTCODE = "36105"
TOKEN = "test-token"
ALICE = "alice@example.com"

RULES = """
optout:
  reply: "Vous ne recevrez plus nos SMS. START pour revenir."
help:
  reply: "ACME : 01 23 45 67 89"
keywords:
  - keyword: HORAIRES
    reply: "Ouvert de 9h à 18h, {{ contact.first_name | default('') }}"
  - keyword: ECHO
    reply: "Reçu : {{ sms.text }}"
  - keyword: AVIS
    survey: avis
surveys:
  avis:
    intro: "Deux questions."
    end: "Merci ! ({{ answers.note }}/5)"
    questions:
      - id: note
        text: "Notez-nous de 1 à 5"
        type: integer
        min: 1
        max: 5
        retry: "Un chiffre de 1 à 5 svp."
      - id: revenir
        text: "Reviendrez-vous ? oui/non"
        type: yes_no
fallback:
  enabled: true
  reply: "Ce numéro ne lit pas les réponses."
"""


class Stack:
    """mail2sms serving, Kannel calling its MO webhook and carrying its SMS."""

    def __init__(self, server: Mail2SmsServer, kannel: KannelStack, operator: FakeOperator,
                 sink: SmtpSink) -> None:
        self.server, self.kannel, self.operator, self.sink = server, kannel, operator, sink
        self.engine = make_engine(server.db_url, create=False)

    def mo(self, text: str, sender: str = PHONE) -> None:
        """An SMS from a phone, through the operator and Kannel to our webhook."""
        self.kannel.inject_mo(sender, SHORTCODE, text)

    def query(self, fn: Callable[[Session], Any]) -> Any:
        with Session(self.engine) as session:
            return fn(session)

    def inbound(self) -> list[Inbound]:
        return self.query(lambda s: list(s.exec(select(Inbound).order_by(col(Inbound.id)))))

    def wait_inbound(self, count: int, timeout: float = 10.0) -> list[Inbound]:
        """Wait until ``count`` SMS are received and handled."""
        deadline = time.monotonic() + timeout
        rows: list[Inbound] = []
        while time.monotonic() < deadline:
            rows = self.inbound()
            if len(rows) >= count and all(r.status != "received" for r in rows):
                return rows
            time.sleep(0.05)
        raise AssertionError(f"{len(rows)} inbound row(s) after {timeout} s, expected {count}"
                             f"\n{self.server.log[-3000:]}")

    def mts_to(self, number: str, count: int, timeout: float = 15.0) -> list[Mt]:
        """The first ``count`` SMS the operator got for ``number``."""
        deadline = time.monotonic() + timeout
        found: list[Mt] = []
        while time.monotonic() < deadline:
            found = [m for m in self.operator.messages if m.to.lstrip("+") == number.lstrip("+")]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(found)} SMS to {number} after {timeout} s: "
                             f"{[m.text for m in found]}\n{self.server.log[-3000:]}")

    def mails(self, match: Callable[[ReceivedMail], bool], count: int = 1,
              timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        found: list[ReceivedMail] = []
        while time.monotonic() < deadline:
            found = [m for m in self.sink.messages if match(m)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(found)} matching email(s) after {timeout} s; received: "
                             f"{[m.message['Subject'] for m in self.sink.messages]}")

    def email(self, msg: EmailMessage, user: str = ALICE) -> None:
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as client:
            client.login(user, PASSWORD)
            client.send_message(msg)


def new_email(subject: str, body: str, *, to: str = "sms@sms.example.com",
              message_id: str = "<alice-1@example.com>") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = ALICE
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


@pytest.fixture
def stack(tmp_path: Path, kannel_factory: Callable[..., KannelStack],
          fake_operator: FakeOperator, smtp_sink: SmtpSink) -> Iterator[Stack]:
    # The server's port is chosen first, so Kannel's get-url can point at it; the server
    # then starts with that Kannel as its gateway.
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    config = base_config(tmp_path, mail_out={"relay": f"127.0.0.1:{smtp_sink.port}"},
                         rules=str(rules))
    port = config["http"]["listen"].rpartition(":")[2]
    kannel = kannel_factory(mo_url=f"http://127.0.0.1:{port}/webhooks/kannel/mo?token={TOKEN}"
                                   "&coding=%c&charset=%C")
    config["gateway"] = {"driver": "kannel", "url": kannel.sendsms_url,
                         "username": kannel.username, "password": kannel.password,
                         "rate_per_second": 200, "timeout": 5}
    with Mail2SmsServer(tmp_path, config) as server:
        s = Stack(server, kannel, fake_operator, smtp_sink)
        yield s
        s.engine.dispose()


def test_stop_opts_out_confirms_once_and_later_email_is_skipped(stack: Stack) -> None:
    stack.mo("Stop merci")
    (confirmation,) = stack.mts_to(PHONE, 1)
    assert confirmation.text == "Vous ne recevrez plus nos SMS. START pour revenir."
    assert confirmation.sender == SHORTCODE
    assert stack.query(lambda s: s.get(OptOut, PHONE)) is not None

    stack.mo("STOP")
    rows = stack.wait_inbound(2)
    assert rows[1].handled_by == "optout" and "no second confirmation" in rows[1].decisions
    time.sleep(1.0)  # room for a second confirmation to show up, were there one
    assert len(stack.mts_to(PHONE, 1)) == 1

    stack.email(new_email("06 12 34 56 78", "Promo de la semaine"))
    (report,) = stack.mails(lambda m: m.rcpt_tos == [ALICE])
    assert "opted out" in report.message.get_content()
    skipped = stack.query(lambda s: s.exec(
        select(Message).where(col(Message.request_id).is_not(None))).one())
    assert (skipped.status, skipped.reason) == ("skipped", "opted out")
    time.sleep(0.5)
    assert len(stack.mts_to(PHONE, 1)) == 1


def test_keyword_reply_comes_back_through_kannel(stack: Stack) -> None:
    stack.mo("horaires ?")
    (reply,) = stack.mts_to(PHONE, 1)
    assert reply.text == "Ouvert de 9h à 18h,"
    (row,) = stack.wait_inbound(1)
    assert (row.handled_by, row.rule, row.receiver) == ("keyword", "HORAIRES", SHORTCODE)


def test_survey_runs_to_its_end(stack: Stack) -> None:
    number = "+33611223344"
    stack.mo("AVIS", number)
    assert stack.mts_to(number, 1)[-1].text == "Deux questions.\nNotez-nous de 1 à 5"
    stack.mo("bof", number)
    assert stack.mts_to(number, 2)[-1].text == "Un chiffre de 1 à 5 svp."
    stack.mo("4 !", number)
    assert stack.mts_to(number, 3)[-1].text == "Reviendrez-vous ? oui/non"
    stack.mo("Oui bien sûr", number)
    assert stack.mts_to(number, 4)[-1].text == "Merci ! (4/5)"
    (session,) = stack.query(lambda s: list(s.exec(select(SurveySession))))
    assert session.status == "done"
    answers = stack.query(lambda s: store.answers_of(s, session.id))
    assert answers == {"note": "4", "revenir": "yes"}


def test_reply_is_mailed_threaded_and_answering_it_sends_the_sms(stack: Stack) -> None:
    number = "+33755667788"
    stack.email(new_email("07 55 66 77 88", "Votre colis arrive demain.",
                          message_id="<colis-42@example.com>"))
    stack.mts_to(number, 1)
    stack.mo("Je ne serai pas là, déposez-le chez la voisine 🙏", number)
    (mail,) = stack.mails(lambda m: m.message["Reply-To"] is not None)
    reply = mail.message
    assert mail.rcpt_tos == [ALICE]
    assert reply["In-Reply-To"] == "<colis-42@example.com>"
    assert reply["References"] == "<colis-42@example.com>"
    assert reply["Reply-To"] == f"{number}@sms.example.com"
    assert reply["Subject"] == "Re: 07 55 66 77 88"
    assert "déposez-le chez la voisine 🙏" in reply.get_content()
    (row,) = stack.wait_inbound(1)
    assert row.handled_by == "forward"  # and no fallback: alice will answer

    answer = new_email("Re: " + reply["Subject"], "", to=reply["Reply-To"],
                       message_id="<alice-2@example.com>")
    quoted = "\n".join("> " + line for line in reply.get_content().splitlines())
    answer.set_content(f"Entendu, ce sera chez la voisine.\n\nLe 24/11/2026, {number} a "
                       f"écrit :\n{quoted}\n")
    answer["In-Reply-To"] = reply["Message-ID"]
    stack.email(answer)
    sms = stack.mts_to(number, 2)
    assert sms[-1].text == "Entendu, ce sera chez la voisine."


def test_unknown_number_gets_the_fallback_once(stack: Stack) -> None:
    number = "+33699887766"
    stack.mo("Bonjour ?", number)
    assert stack.mts_to(number, 1)[0].text == "Ce numéro ne lit pas les réponses."
    stack.mo("Allo ?", number)
    stack.wait_inbound(2)
    time.sleep(0.5)
    assert len(stack.mts_to(number, 1)) == 1


def test_accents_emoji_and_ucs2_arrive_intact(stack: Stack) -> None:
    text = "Réunion à 9h ☕ 🎉 ça marche, où ?"
    stack.mo(f"ECHO {text}")
    assert stack.mts_to(PHONE, 1)[0].text == f"Reçu : ECHO {text}"
    # an operator handing over a UCS-2 SMS: Kannel passes its UTF-16BE bytes on
    raw = "ECHO Ünïcödé 😀".encode("utf-16-be")
    query = httpx.QueryParams({"username": stack.kannel.smsc_username,
                               "password": stack.kannel.smsc_password, "from": PHONE,
                               "to": SHORTCODE, "coding": "2", "charset": "UTF-16BE"})
    url = f"{stack.kannel.smsc_url}?{query}&text=" + "".join(f"%{b:02X}" for b in raw)
    httpx.get(url, timeout=5).raise_for_status()
    assert stack.mts_to(PHONE, 2)[1].text == "Reçu : ECHO Ünïcödé 😀"
    assert [r.text for r in stack.wait_inbound(2)] == [f"ECHO {text}", "ECHO Ünïcödé 😀"]


def test_same_mo_twice_is_answered_once(stack: Stack) -> None:
    url = f"{stack.server.http_url}/webhooks/kannel/mo"
    params = {"token": TOKEN, "from": PHONE, "to": SHORTCODE, "text": "HORAIRES",
              "ts": "2026-11-24 10:00:00", "id": "kannel-uuid-1"}
    for _ in range(2):  # a gateway retrying after a lost answer
        response = httpx.get(url, params=params, timeout=5)
        assert (response.status_code, response.content) == (200, b"")
    rows = stack.wait_inbound(2 - 1)
    assert len(rows) == 1
    time.sleep(1.0)
    assert len(stack.mts_to(PHONE, 1)) == 1


def test_bad_input_is_handled_and_nothing_answered_twice(stack: Stack) -> None:
    url = f"{stack.server.http_url}/webhooks/kannel/mo"
    base = {"from": PHONE, "to": SHORTCODE, "ts": "2026-11-24 10:00:00"}
    spoofed = httpx.get(url, params={**base, "token": "guess", "text": "STOP", "id": "x"},
                        timeout=5)
    assert spoofed.status_code == 401
    bearer = httpx.get(url, params={**base, "text": "STOP", "id": "y"},
                       headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bearer.status_code == 401
    texts = {"empty": "", "long": "é" * 2000, "emoji": "🎉🎉🎉",
             "template": "ECHO {{ ''.__class__.__mro__[1].__subclasses__() }} {% raw %}",
             "controls": "ECHO a\x00b\x1bc"}
    for key, text in texts.items():
        response = httpx.get(url, params={**base, "token": TOKEN, "text": text, "id": key},
                             timeout=5)
        assert (response.status_code, response.content) == (200, b""), key
    binary = httpx.get(f"{url}?token={TOKEN}&from=%2B33612345678&id=bin&coding=1"
                       "&text=%FF%FE%00%01%80", timeout=5)
    assert (binary.status_code, binary.content) == (200, b"")
    missing = httpx.get(url, params={"token": TOKEN, "text": "x"}, timeout=5)
    assert (missing.status_code, missing.content) == (400, b"")
    assert spoofed.status_code == 401 and stack.query(lambda s: s.get(OptOut, PHONE)) is None

    rows = {r.gateway_id: r for r in stack.wait_inbound(6)}
    assert set(rows) == {"empty", "long", "emoji", "template", "controls", "bin"}
    assert rows["empty"].handled_by == "empty"
    assert rows["long"].text == "é" * 2000
    assert rows["template"].text == texts["template"]  # stored as data
    assert rows["controls"].text == "ECHO abc"
    # the template and the controls are echoed as text; the long one, the emoji and the
    # binary one got the fallback: once for the number
    sent = stack.mts_to(PHONE, 3)
    time.sleep(1.0)  # room for anything more to show up, were there anything
    assert sorted(m.text for m in stack.operator.messages) == sorted(
        ["Reçu : " + texts["template"], "Reçu : ECHO abc", "Ce numéro ne lit pas les réponses."])
    assert len(sent) == 3
    assert "Traceback" not in stack.server.log
    assert PHONE not in stack.server.log and "+336******78" in stack.server.log  # masked


def test_generic_json_webhook(stack: Stack) -> None:
    url = f"{stack.server.http_url}/webhooks/mo"
    batch = [{"from": "0611111111", "to": SHORTCODE, "text": "HORAIRES", "id": "g1"},
             {"from": "+33622222222", "to": SHORTCODE, "text": "AIDE", "id": "g2"}]
    response = httpx.post(url, json=batch, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=5)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["handled_by"] for r in results] == ["keyword", "help"]
    again = httpx.post(url, json=batch[0], params={"token": TOKEN}, timeout=5)
    assert again.json()["results"][0]["status"] == "duplicate"
    assert stack.mts_to("+33622222222", 1)[0].text == "ACME : 01 23 45 67 89"
    bad = httpx.post(url, json=[batch[0], {"text": "no sender"}], params={"token": TOKEN},
                     timeout=5)
    assert bad.status_code == 400 and "item 1" in bad.json()["error"]
    assert httpx.post(url, json=batch, timeout=5).status_code == 401


def test_concurrent_retries_store_one_row(db_url: str) -> None:
    """Two webhook calls racing with the same gateway id: one row, on both backends."""
    from store.db import Database

    db = Database(db_url)
    results: list[int | None] = []
    barrier = threading.Barrier(8)

    def insert() -> None:
        barrier.wait(5)
        results.append(db.run_sync(lambda s: store.insert_inbound(
            s, dedup_key="id:race", sender=PHONE, receiver=SHORTCODE, text="x")))

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    try:
        assert len(results) == 8
        assert len([r for r in results if r is not None]) == 1
    finally:
        db.close()


def test_invalid_rules_file_refuses_to_start_with_every_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("keywords:\n  - keyword: STOP\n    reply: x\n  - keyword: A\n"
                     "    survey: nowhere\n", encoding="utf-8")
    server = Mail2SmsServer(tmp_path, base_config(tmp_path, rules=str(rules)))
    with pytest.raises(RuntimeError, match="exited with 1"):
        server.start(timeout=20)
    assert f"{rules}:2" in server.log and "nowhere" in server.log
    assert "not started: 2 problem(s) in the rules file" in server.log


def test_missing_rules_file_serves_the_defaults(tmp_path: Path) -> None:
    config = base_config(tmp_path, rules=str(tmp_path / "absent.yaml"))
    with Mail2SmsServer(tmp_path, config) as server:
        assert "absent.yaml not found" in server.log
        response = httpx.post(f"{server.http_url}/webhooks/mo", params={"token": TOKEN},
                              json={"from": PHONE, "text": "STOP", "id": "1"}, timeout=5)
        assert response.json()["results"][0]["handled_by"] == "optout"


def test_relative_rules_path_is_read_beside_the_config(tmp_path: Path) -> None:
    site = tmp_path / "site"  # the server runs in tmp_path; config and rules are in site/
    site.mkdir()
    (site / "rules.yaml").write_text(RULES, encoding="utf-8")
    server = Mail2SmsServer(tmp_path, base_config(tmp_path, rules="rules.yaml"))
    server.config_path = site / "config.yaml"
    with server:
        response = httpx.post(f"{server.http_url}/webhooks/mo", params={"token": TOKEN},
                              json={"from": PHONE, "text": "horaires", "id": "1"}, timeout=5)
        assert response.json()["results"][0]["handled_by"] == "keyword"


async def test_pipeline_on_both_backends(db_url: str) -> None:
    """The pipeline's queries on SQLite and PostgreSQL: keyword, survey, STOP, dedup."""
    from autoresponder.loader import parse_rules
    from inbound.model import Settings, Sms
    from inbound.pipeline import Pipeline
    from store.db import Database

    db = Database(db_url)
    ruleset = parse_rules(RULES, "rules.yaml")
    pipeline = Pipeline(db, lambda: ruleset, Settings())
    texts = ["HORAIRES", "AVIS", "9", "3", "oui", "STOP", "STOP", "Bonjour"]
    try:
        outcomes = [await pipeline.handle(Sms(PHONE, SHORTCODE, t, f"id:{n}"))
                    for n, t in enumerate(texts)]
        duplicate = await pipeline.handle(Sms(PHONE, SHORTCODE, "HORAIRES", "id:0"))
        assert [o.handled_by for o in outcomes] == [
            "keyword", "keyword", "survey", "survey", "survey", "optout", "optout", None]
        assert [len(o.replies) for o in outcomes] == [1, 1, 1, 1, 1, 1, 0, 0]
        assert duplicate.duplicate
        rows = db.run_sync(lambda s: list(s.exec(select(Message).order_by(col(Message.id)))))
        assert [m.status for m in rows] == ["queued"] * 6
        assert rows[-1].text == "Vous ne recevrez plus nos SMS. START pour revenir."
        assert db.run_sync(lambda s: s.get(OptOut, PHONE)) is not None
    finally:
        await pipeline.aclose()
        db.close()
