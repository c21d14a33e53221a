"""Mailer against a real aiosmtpd sink on the loopback interface."""

from __future__ import annotations

import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from gateway.config import MailOutConfig
from gateway.mailer import Mailer, MailError
from tests.servers.ports import free_port


class Sink:
    """Keeps every message; refuses recipients at refused.example."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth: Any
) -> AuthResult:
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (b"relay", b"pw")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def start(sink: Sink, **kwargs: Any) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, port


@pytest.fixture
def sink() -> Sink:
    return Sink()


def mail(to: str = "bob@example.com") -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = "Réponse de +33612345678"
    message.set_content("Bonjour, c'est noté ✓")
    return message


async def test_sends_through_the_relay(sink: Sink) -> None:
    controller, port = start(sink)
    try:
        await Mailer(MailOutConfig(relay=f"127.0.0.1:{port}")).send(mail())
    finally:
        controller.stop()
    [envelope] = sink.envelopes
    assert envelope.mail_from == "sms@sms.example.com"
    assert envelope.rcpt_tos == ["bob@example.com"]
    content = envelope.original_content or b""
    assert b"From: sms@sms.example.com" in content
    assert b"Subject: =?utf-8?" in content


async def test_keeps_an_existing_from_and_explicit_recipients(sink: Sink) -> None:
    controller, port = start(sink)
    message = mail()
    message["From"] = "+33612345678@sms.example.com"
    try:
        await Mailer(MailOutConfig(relay=f"127.0.0.1:{port}")).send(
            message, recipients=["carol@example.com"]
        )
    finally:
        controller.stop()
    [envelope] = sink.envelopes
    assert envelope.rcpt_tos == ["carol@example.com"]
    assert b"From: +33612345678@sms.example.com" in (envelope.original_content or b"")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_authenticates_when_a_username_is_set(sink: Sink) -> None:
    controller, port = start(
        sink, authenticator=authenticator, auth_required=True, auth_require_tls=False
    )
    relay = f"127.0.0.1:{port}"
    try:
        await Mailer(MailOutConfig(relay=relay, username="relay", password="pw")).send(mail())
        with pytest.raises(MailError, match="refused the login of 'relay': 535"):
            await Mailer(MailOutConfig(relay=relay, username="relay", password="no")).send(mail())
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1


async def test_starttls(sink: Sink, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    controller, port = start(sink, tls_context=server_tls, require_starttls=True)
    client_tls = ssl.create_default_context(cafile=str(cert))
    try:
        cfg = MailOutConfig(relay=f"127.0.0.1:{port}", starttls=True)
        await Mailer(cfg, tls_context=client_tls).send(mail())
        # Without STARTTLS this relay refuses to take mail.
        with pytest.raises(MailError, match="530"):
            await Mailer(MailOutConfig(relay=f"127.0.0.1:{port}")).send(mail())
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1


async def test_refused_recipient_is_a_clear_error(sink: Sink) -> None:
    controller, port = start(sink)
    try:
        with pytest.raises(MailError, match=r"refused nobody@refused.example \(550"):
            await Mailer(MailOutConfig(relay=f"127.0.0.1:{port}")).send(
                mail("nobody@refused.example")
            )
    finally:
        controller.stop()


async def test_unreachable_relay_is_tried_twice_then_reported() -> None:
    relay = f"127.0.0.1:{free_port()}"
    mailer = Mailer(MailOutConfig(relay=relay, timeout=2), retry_delay=0.01)
    with pytest.raises(MailError, match=f"mail relay {relay} unreachable"):
        await mailer.send(mail())


def test_relay_must_be_host_and_port() -> None:
    with pytest.raises(ValueError, match="host:port"):
        Mailer(MailOutConfig(relay="localhost"))


async def test_send_batch_uses_one_connection_and_reports_each_message(sink: Sink) -> None:
    peers: list[Any] = []

    class CountingSink(Sink):
        async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
            peers.append(session.peer)
            return await super().handle_DATA(server, session, envelope)

    counting = CountingSink()
    controller, port = start(counting)
    try:
        results = await Mailer(MailOutConfig(relay=f"127.0.0.1:{port}")).send_batch(
            [mail("a@example.com"), mail("b@refused.example"), mail("c@example.com")]
        )
    finally:
        controller.stop()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], MailError) and "550" in str(results[1])
    assert [e.rcpt_tos for e in counting.envelopes] == [["a@example.com"], ["c@example.com"]]
    assert len(peers) == 2 and peers[0] == peers[1]  # the same client address and port


async def test_send_batch_to_an_unreachable_relay_fails_every_message() -> None:
    results = await Mailer(MailOutConfig(relay=f"127.0.0.1:{free_port()}")).send_batch(
        [mail(), mail()]
    )
    assert len(results) == 2
    assert all(isinstance(r, MailError) and "127.0.0.1" in str(r) for r in results)
