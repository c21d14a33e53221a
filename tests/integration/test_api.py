"""The HTTP API of a real ``mail2sms serve``: health, webhook tokens, delivery reports.

Messages are queued the way users queue them (an email over SMTP), sent by the console
gateway, then settled by the delivery reports a gateway would post back.
"""

from __future__ import annotations

import itertools
import re
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store import queries
from store.db import make_engine
from store.models import DeliveryReport, Message
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config

pytestmark = pytest.mark.integration

TOKEN = "test-token"
KANNEL_DLR = "/webhooks/kannel/dlr"
GENERIC_DLR = "/webhooks/dlr"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail2SmsServer]:
    tmp = tmp_path_factory.mktemp("api")
    config = base_config(tmp, http={"webhook_token": TOKEN})
    with Mail2SmsServer(tmp, config) as srv:
        yield srv


@pytest.fixture(scope="module")
def engine(server: Mail2SmsServer) -> Iterator[Engine]:
    engine = make_engine(server.db_url, create=False)
    yield engine
    engine.dispose()


@pytest.fixture
def http(server: Mail2SmsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=10) as client:
        yield client


def message(engine: Engine, message_id: int) -> Message:
    with Session(engine) as session:
        found = queries.get_message(session, message_id)
        assert found is not None, f"no message {message_id}"
        return found


def reports(engine: Engine, message_id: int) -> list[DeliveryReport]:
    with Session(engine) as session:
        stmt = (select(DeliveryReport).where(DeliveryReport.message_id == message_id)
                .order_by(col(DeliveryReport.id)))
        return list(session.exec(stmt))


def submitted_sms(server: Mail2SmsServer, engine: Engine, timeout: float = 15.0) -> int:
    """Email one SMS to a fresh number; its message id once the gateway has it."""
    n = next(_numbers)
    number, text = f"+33612{n:06d}", f"Message de test n°{n}"
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "sms@sms.example.com"
    msg["Subject"] = number
    msg.set_content(text)
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.login("alice@example.com", PASSWORD)
        assert client.send_message(msg) == {}
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        with Session(engine) as session:
            row = session.exec(select(Message).where(Message.to == number)
                               .where(Message.text == text)).first()
        if row is not None:
            status = row.status
            if status == "submitted":
                assert row.id is not None and row.gateway_id
                return row.id
        time.sleep(0.05)
    raise AssertionError(f"SMS to {number} is {status} after {timeout} s, not submitted\n"
                         f"{server.log[-3000:]}")


def kannel_dlr(http: httpx.Client, message_id: int | str, status: int | str,
               **params: str) -> httpx.Response:
    return http.get(KANNEL_DLR, params={"token": TOKEN, "id": str(message_id),
                                        "status": str(status), **params})


def generic_dlr(http: httpx.Client, payload: Any) -> httpx.Response:
    return http.post(GENERIC_DLR, json=payload, headers={"Authorization": f"Bearer {TOKEN}"})


# --- health and tokens --------------------------------------------------------------


def test_healthz(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


UNKNOWN_ID = 987654321
WEBHOOKS = [
    ("GET", KANNEL_DLR, {"params": {"id": str(UNKNOWN_ID), "status": "1"}}, 202),
    ("POST", KANNEL_DLR, {"data": {"id": str(UNKNOWN_ID), "status": "1"}}, 202),
    ("POST", GENERIC_DLR, {"json": {"id": UNKNOWN_ID, "status": "delivered"}}, 200),
]
WEBHOOK_IDS = ["kannel-dlr-get", "kannel-dlr-post", "generic-dlr"]


def _with_token(kwargs: dict[str, Any], token: str | None = None,
                bearer: str | None = None) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}
    if token is not None:
        out.setdefault("params", {})["token"] = token
    if bearer is not None:
        out["headers"] = {"Authorization": f"Bearer {bearer}"}
    return out


@pytest.mark.parametrize(("method", "path", "kwargs", "accepted"), WEBHOOKS, ids=WEBHOOK_IDS)
def test_webhooks_refuse_a_missing_or_wrong_token(
    http: httpx.Client, engine: Engine, method: str, path: str, kwargs: dict[str, Any],
    accepted: int,
) -> None:
    kept = len(reports(engine, UNKNOWN_ID))
    for attempt in (_with_token(kwargs), _with_token(kwargs, token="wrong"),
                    _with_token(kwargs, bearer="wrong"), _with_token(kwargs, token=""),
                    _with_token(kwargs, token=TOKEN + "x")):
        response = http.request(method, path, **attempt)
        assert response.status_code == 401, (attempt, response.text)
        assert "token" in response.text
    assert len(reports(engine, UNKNOWN_ID)) == kept  # nothing was recorded


@pytest.mark.parametrize(("method", "path", "kwargs", "accepted"), WEBHOOKS, ids=WEBHOOK_IDS)
@pytest.mark.parametrize("how", ["query", "bearer"])
def test_webhooks_accept_the_token_as_query_or_bearer(
    http: httpx.Client, method: str, path: str, kwargs: dict[str, Any], accepted: int,
    how: str,
) -> None:
    attempt = (_with_token(kwargs, token=TOKEN) if how == "query"
               else _with_token(kwargs, bearer=TOKEN))
    response = http.request(method, path, **attempt)
    assert response.status_code == accepted, response.text


# --- Kannel delivery reports ----------------------------------------------------------


def test_kannel_delivered_then_a_late_smsc_ack_does_not_move_it_back(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    response = kannel_dlr(http, message_id, 1, answer="id:1 stat:DELIVRD err:000")
    assert response.status_code == 200, response.text
    delivered = message(engine, message_id)
    assert delivered.status == "delivered"
    assert delivered.final_at is not None

    assert kannel_dlr(http, message_id, 8).status_code == 200
    assert kannel_dlr(http, message_id, 16).status_code == 200
    assert message(engine, message_id).status == "delivered"
    # every report is kept, even those that changed nothing
    assert [r.code for r in reports(engine, message_id)] == ["1", "8", "16"]


def test_kannel_failed_with_stat_expired_is_expired(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    answer = ("id:8f2a sub:001 dlvrd:000 submit date:2611280900 done date:2611300900 "
              "stat:EXPIRED err:000 text:Message de test")
    assert kannel_dlr(http, message_id, 2, answer=answer).status_code == 200
    expired = message(engine, message_id)
    assert expired.status == "expired"
    assert "expired" in (expired.reason or "")


def test_kannel_failed_keeps_the_operator_codes(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    answer = "id:77 sub:001 dlvrd:000 stat:UNDELIV err:001 text:x"
    assert kannel_dlr(http, message_id, 2, answer=answer).status_code == 200
    failed = message(engine, message_id)
    assert failed.status == "failed"
    assert "stat:UNDELIV err:001" in (failed.reason or "")


def test_kannel_smsc_reject_is_failed(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    assert kannel_dlr(http, message_id, 16).status_code == 200
    failed = message(engine, message_id)
    assert failed.status == "failed"
    assert "rejected" in (failed.reason or "")


def test_kannel_buffered_is_pending_until_delivered(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    assert kannel_dlr(http, message_id, 8).status_code == 200
    assert message(engine, message_id).status == "submitted"
    assert kannel_dlr(http, message_id, 4).status_code == 200
    assert message(engine, message_id).status == "pending"
    assert kannel_dlr(http, message_id, 1).status_code == 200
    assert message(engine, message_id).status == "delivered"


def test_kannel_dlr_posted_as_a_form(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    response = http.post(KANNEL_DLR, params={"token": TOKEN},
                         data={"id": str(message_id), "status": "1"})
    assert response.status_code == 200, response.text
    assert message(engine, message_id).status == "delivered"


def test_kannel_dlr_for_an_unknown_id_is_kept(http: httpx.Client, engine: Engine) -> None:
    unknown = 555000 + next(_numbers)
    response = kannel_dlr(http, unknown, 2, answer="stat:UNDELIV err:001")
    assert response.status_code == 202
    assert "unknown" in response.text
    (kept,) = reports(engine, unknown)
    assert (kept.code, kept.status) == ("2", "failed")


@pytest.mark.parametrize(("params", "named"), [
    ({"id": "abc", "status": "1"}, "id=<message id>"),
    ({"status": "1"}, "id=<message id>"),
    ({"id": "1", "status": "delivered"}, "status=<Kannel %d>"),
    ({"id": "1", "status": "3"}, "unknown Kannel delivery report status 3"),
], ids=["id-not-a-number", "no-id", "status-not-a-number", "unknown-status-code"])
def test_kannel_dlr_that_cannot_be_read_is_400(
    http: httpx.Client, params: dict[str, str], named: str
) -> None:
    response = http.get(KANNEL_DLR, params={"token": TOKEN, **params})
    assert response.status_code == 400
    assert named in response.text


# --- generic JSON delivery reports -------------------------------------------------------


def test_generic_dlr_delivered(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    response = generic_dlr(http, {"id": message_id, "status": "delivered"})
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [{"id": message_id, "status": "delivered"}]}
    assert message(engine, message_id).status == "delivered"


@pytest.mark.parametrize(("word", "status"), [
    ("DELIVRD", "delivered"), ("Delivered", "delivered"), ("UNDELIV", "failed"),
    ("REJECTD", "failed"), ("expired", "expired"), ("buffered", "pending"),
    ("en-route", "submitted"),
])
def test_generic_dlr_understands_the_usual_words(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client, word: str, status: str
) -> None:
    message_id = submitted_sms(server, engine)
    response = generic_dlr(http, {"id": str(message_id), "status": word})
    assert response.status_code == 200, response.text
    assert message(engine, message_id).status == status


def test_generic_dlr_list_and_gateway_id(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    first, second = submitted_sms(server, engine), submitted_sms(server, engine)
    gateway_id = message(engine, second).gateway_id
    response = generic_dlr(http, [
        {"id": first, "status": "DELIVRD"},
        {"gateway_id": gateway_id, "status": "undeliverable", "detail": "absent subscriber"},
        {"id": UNKNOWN_ID + 1, "status": "delivered"},
    ])
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"id": first, "status": "delivered"},
        {"id": second, "status": "failed"},
        {"id": None, "status": "unknown"},
    ]
    assert message(engine, first).status == "delivered"
    failed = message(engine, second)
    assert failed.status == "failed" and failed.reason == "absent subscriber"
    assert len(reports(engine, UNKNOWN_ID + 1)) == 1  # the unknown one is kept


def test_generic_dlr_does_not_move_a_delivered_message_back(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    message_id = submitted_sms(server, engine)
    assert generic_dlr(http, {"id": message_id, "status": "delivered"}).status_code == 200
    assert generic_dlr(http, {"id": message_id, "status": "submitted"}).status_code == 200
    assert generic_dlr(http, {"id": message_id, "status": "failed"}).status_code == 200
    assert message(engine, message_id).status == "delivered"


@pytest.mark.parametrize(("body", "named"), [
    (b"{not json", "JSON"),
    (b'{"id": 1, "status": "teleported"}', "'teleported'"),
    (b'{"id": 1}', "'status'"),
    (b'{"status": "delivered"}', "'id'"),
    (b'{"id": "twelve", "status": "delivered"}', "'twelve'"),
    (b'[1, 2]', "JSON object"),
    (b'{"id": 1, "status": "delivered", "detail": {"a": 1}}', "'detail'"),
], ids=["bad-json", "unknown-status", "no-status", "no-id", "id-not-a-number",
        "not-objects", "detail-not-text"])
def test_generic_dlr_that_cannot_be_read_is_400_naming_the_problem(
    http: httpx.Client, body: bytes, named: str
) -> None:
    response = http.post(GENERIC_DLR, content=body, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_a_refused_generic_batch_changes_nothing(
    server: Mail2SmsServer, engine: Engine, http: httpx.Client
) -> None:
    """A 400 tells the gateway the batch was not taken: no item of it may be applied."""
    message_id = submitted_sms(server, engine)
    response = generic_dlr(http, [{"id": message_id, "status": "delivered"},
                                  {"id": message_id, "status": "teleported"}])
    assert response.status_code == 400
    assert "'teleported'" in response.json()["error"]
    assert message(engine, message_id).status == "submitted"
    assert reports(engine, message_id) == []


def test_the_server_log_masks_numbers(server: Mail2SmsServer, engine: Engine,
                                      http: httpx.Client) -> None:
    """Numbers are masked in logs (+336******78), whatever happened to the SMS."""
    message_id = submitted_sms(server, engine)
    assert kannel_dlr(http, message_id, 1).status_code == 200
    number = message(engine, message_id).to
    time.sleep(0.2)  # let the log reader catch up
    assert number not in server.log
    assert not re.search(r"\+33612\d{6}", server.log), server.log[-2000:]
