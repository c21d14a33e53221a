"""KannelDriver against a real bearerbox + smsbox and a fake operator."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway.drivers.base import OutgoingSms, PermanentError, TransientError
from gateway.drivers.kannel import KannelDriver
from tests.servers.kannel import KannelStack
from tests.servers.operator import FakeOperator, join_parts
from tests.servers.ports import free_port

pytestmark = pytest.mark.integration

UCS2_TEXT = "Réunion demain à 9h ☕ 🎉 ça marche"


class DlrReceiver:
    """Our DLR webhook's stand-in: records the query of every GET on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[dict[str, str]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                with receiver._cond:
                    receiver.calls.append(dict(urllib.parse.parse_qsl(query)))
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def template(self) -> str:
        return (
            f"http://127.0.0.1:{self.port}/webhooks/kannel/dlr"
            "?token=T&id={id}&status=%d&ts=%T&answer=%A"
        )

    def wait_for(self, match: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((call for call in self.calls if match(call)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching DLR in {timeout} s; got {self.calls}")
                self._cond.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module", autouse=True)
def receiver() -> Iterator[DlrReceiver]:
    """One receiver for the module, set up before Kannel and gone after it.

    Kannel keeps calling dlr-urls after a test has moved on, and smsbox 1.4.5 panics
    (`conn_unregister: Assertion conn != NULL`) when such a call is reset because its
    receiver went away. So tests match reports by message id instead.
    """
    r = DlrReceiver()
    yield r
    r.close()


@pytest.fixture
async def driver(kannel: KannelStack, receiver: DlrReceiver) -> Any:
    d = KannelDriver(
        kannel.sendsms_url,
        kannel.username,
        kannel.password,
        dlr_url_template=receiver.template,
        timeout=5.0,
    )
    yield d
    await d.aclose()


def sms(text: str, encoding: str = "gsm7", *, id: int = 1, to: str = "+33612345678") -> OutgoingSms:
    return OutgoingSms(id=id, to=to, sender="36105", text=text, encoding=encoding)


async def test_gsm_text_arrives_intact(driver: KannelDriver, fake_operator: FakeOperator) -> None:
    text = "Rendez-vous à 9h: 5€ {ok} [x] ^_^ é è ù"
    assert await driver.submit(sms(text)) is None

    [mt] = fake_operator.wait_for(1)
    assert (mt.sender, mt.to, mt.text) == ("36105", "+33612345678", text)
    assert (mt.coding, mt.charset, mt.dlr_mask) == (0, "UTF-8", 23)


async def test_ucs2_text_with_accents_and_emoji_arrives_intact(
    driver: KannelDriver, fake_operator: FakeOperator
) -> None:
    await driver.submit(sms(UCS2_TEXT, "ucs2"))

    [mt] = fake_operator.wait_for(1)
    assert mt.text == UCS2_TEXT
    # What Kannel really sends for coding=2: UTF-16BE octets, announced as such.
    assert (mt.coding, mt.charset) == (2, "UTF-16BE")
    assert mt.raw_text == UCS2_TEXT.encode("utf-16-be")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Bonjour, " + "voici un long message. " * 17, "gsm7"),  # 400 chars: 153+153+94
        ("Réunion ☕ 🎉 " * 14, "ucs2"),  # 182 UTF-16 units: 67+67+48
    ],
    ids=["gsm7", "ucs2"],
)
async def test_long_text_arrives_whole_in_three_parts(
    driver: KannelDriver, fake_operator: FakeOperator, text: str, encoding: str
) -> None:
    await driver.submit(sms(text, encoding))

    parts = fake_operator.wait_for(3)
    await asyncio.sleep(0.2)  # a fourth part would be a splitting bug
    parts = fake_operator.messages
    assert len(parts) == 3
    assert sorted(mt.concat[1:] for mt in parts if mt.concat) == [(3, 1), (3, 2), (3, 3)]
    assert join_parts(parts) == [text]


@pytest.mark.parametrize(
    ("reported", "answer_has"),
    [(1, "stat:DELIVRD"), (2, "stat:UNDELIV"), (16, "stat:REJECTD")],
)
async def test_operator_dlr_reaches_our_webhook_through_kannel(
    driver: KannelDriver,
    fake_operator: FakeOperator,
    receiver: DlrReceiver,
    reported: int,
    answer_has: str,
) -> None:
    fake_operator.auto_dlr = reported
    our_id = str(4200 + reported)
    await driver.submit(sms("Votre code: 1234", id=int(our_id)))

    [mt] = fake_operator.wait_for(1)
    # Our dlr-url reached the operator (wrapped by bearerbox), Kannel's escapes unexpanded.
    assert mt.original_dlr_url == receiver.template.replace("{id}", our_id)
    # What the operator said comes back; "accepted by the SMSC" (8) is not asked for.
    final = receiver.wait_for(lambda c: c.get("id") == our_id and c["status"] == str(reported))
    assert final["token"] == "T"
    assert answer_has in final["answer"]
    assert final["ts"].isdigit()
    assert not [c for c in receiver.calls if c.get("id") == our_id and c["status"] == "8"]


async def test_intermediate_dlr_keeps_the_final_one_coming(
    driver: KannelDriver, fake_operator: FakeOperator, receiver: DlrReceiver
) -> None:
    await driver.submit(sms("Message en attente", id=77))
    [mt] = fake_operator.wait_for(1)

    assert fake_operator.send_dlr(mt, 4).status == 202
    assert fake_operator.send_dlr(mt, 1).status == 202

    for status in ("4", "1"):
        receiver.wait_for(lambda c, status=status: c["status"] == status and c["id"] == "77")
    # smsbox calls dlr-urls concurrently: the order they arrive in is not guaranteed.
    assert sorted(c["status"] for c in receiver.calls if c.get("id") == "77") == ["1", "4"]


async def test_operator_refusal_comes_back_as_dlr_16(
    driver: KannelDriver, fake_operator: FakeOperator, receiver: DlrReceiver
) -> None:
    fake_operator.fail(500, "Temporal failure")
    # smsbox has answered before the operator is asked: the driver sees success.
    assert await driver.submit(sms("Refusé", id=9)) is None

    fake_operator.wait_for(1)
    report = receiver.wait_for(lambda c: c.get("id") == "9" and c["status"] == "16")
    assert report["answer"] == "NACK/Temporal failure"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "wrong"}, "Authorization failed"),
        ({"sender": ""}, "Sender missing"),
        ({"to": "not-a-number"}, "denied by white- and/or black-lists"),
    ],
    ids=["credentials", "sender", "receiver"],
)
async def test_kannel_refusals_are_permanent(
    kannel: KannelStack, change: dict[str, str], message: str
) -> None:
    d = KannelDriver(
        kannel.sendsms_url,
        kannel.username,
        change.get("password", kannel.password),
        dlr_url_template=None,
    )
    try:
        with pytest.raises(PermanentError, match=message) as caught:
            await d.submit(
                OutgoingSms(
                    id=1,
                    to=change.get("to", "+33612345678"),
                    sender=change.get("sender", "36105"),
                    text="Bonjour",
                    encoding="gsm7",
                )
            )
    finally:
        await d.aclose()
    assert "HTTP 4" in str(caught.value)
    assert "wrong" not in str(caught.value) or change.get("password") != "wrong"


async def test_kannel_down_is_transient_then_restart_works(
    driver: KannelDriver, kannel: KannelStack, fake_operator: FakeOperator
) -> None:
    # A first SMS leaves a keep-alive connection in the pool, as in production.
    await driver.submit(sms("Avant"))
    fake_operator.wait_for(1)

    kannel.stop()
    with pytest.raises(TransientError) as caught:
        await driver.submit(sms("Pendant"))
    expected = f"Kannel unreachable at 127.0.0.1:{kannel.sendsms_port}: connection refused"
    assert str(caught.value) == expected

    kannel.start()
    await driver.submit(sms("Après"))
    assert [mt.text for mt in fake_operator.wait_for(2)] == ["Avant", "Après"]


async def test_restart_keeps_sending(
    driver: KannelDriver, kannel: KannelStack, fake_operator: FakeOperator
) -> None:
    await driver.submit(sms("Un"))
    fake_operator.wait_for(1)
    kannel.restart()
    await driver.submit(sms("Deux"))
    assert [mt.text for mt in fake_operator.wait_for(2)] == ["Un", "Deux"]


class StubKannel:
    """A sendsms endpoint that answers what it is told, or hangs up without answering."""

    def __init__(self, status: int, body: str, reset: bool = False) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if reset:
                    # SO_LINGER 0: no answer, the socket torn down as by a crashing box.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.close_connection = True
                    return
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/sendsms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "reset", "error", "reason"),
    [
        (503, "Temporal failure, try again later.", False, TransientError, "HTTP 503"),
        (500, "Sending failed.", False, TransientError, r"HTTP 500\): Sending failed"),
        (202, "3: Queued for later delivery", False, None, ""),
        (200, "", True, TransientError, "dropped the connection: "),
    ],
    ids=["503", "500", "queued", "reset"],
)
async def test_answers_kannel_gives_under_trouble(
    status: int, body: str, reset: bool, error: type[Exception] | None, reason: str
) -> None:
    stub = StubKannel(status, body, reset)
    d = KannelDriver(stub.url, "u", "p", dlr_url_template=None, timeout=2.0)
    try:
        if error is None:
            assert await d.submit(sms("Bonjour")) is None
        else:
            with pytest.raises(error, match=reason):
                await d.submit(sms("Bonjour"))
    finally:
        await d.aclose()
        stub.close()


async def test_silent_server_times_out() -> None:
    # Listening but never accepting: the request hangs like an overloaded Kannel.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        port = silent.getsockname()[1]
        d = KannelDriver(
            f"http://127.0.0.1:{port}/cgi-bin/sendsms", "u", "p", dlr_url_template=None, timeout=0.5
        )
        try:
            with pytest.raises(TransientError, match=r"timed out after 0\.5 s"):
                await d.submit(sms("Bonjour"))
        finally:
            await d.aclose()


def test_dlr_url_is_passed_unexpanded_and_encoded() -> None:
    d = KannelDriver(
        "http://127.0.0.1:13013/cgi-bin/sendsms",
        "u",
        "p",
        dlr_url_template="http://127.0.0.1:8080/webhooks/kannel/dlr?token=T&id={id}&status=%d",
    )
    params = d.params(sms("Bonjour", id=12))
    assert params["dlr-url"] == "http://127.0.0.1:8080/webhooks/kannel/dlr?token=T&id=12&status=%d"
    assert params["dlr-mask"] == "23"
    assert (params["coding"], params["charset"]) == ("0", "UTF-8")
    assert d.params(sms("é", "ucs2"))["coding"] == "2"
    with pytest.raises(PermanentError, match="unknown encoding"):
        d.params(sms("x", "latin1"))
    with pytest.raises(ValueError, match=r"\{id\}"):
        KannelDriver("http://127.0.0.1:1/", "u", "p", dlr_url_template="http://x/?status=%d")


def test_injected_mo_reaches_get_url(
    kannel_factory: Callable[..., KannelStack], receiver: DlrReceiver
) -> None:
    stack = kannel_factory(mo_url=f"http://127.0.0.1:{receiver.port}/webhooks/kannel/mo?token=T")

    assert stack.inject_mo("+33612345678", "36105", "Réponse: ça marche ☕") == "Sent."

    mo = receiver.wait_for(lambda c: "text" in c)
    assert (mo["from"], mo["to"], mo["token"]) == ("+33612345678", "36105", "T")
    assert mo["text"] == "Réponse: ça marche ☕"
    assert mo["id"] and mo["ts"]
