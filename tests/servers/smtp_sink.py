"""A real SMTP server on 127.0.0.1 that keeps every message it receives."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.ports import free_port

_START_ATTEMPTS = 3  # a port taken between free_port() and bind is retried on a new one


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = field(repr=False)


class _Controller(Controller):
    def factory(self) -> Any:
        # With credentials, AUTH without TLS is deliberate (loopback only); aiosmtpd
        # warns about it on every connection.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        accept = self._sink.accept_recipient
        if accept is not None and not accept(address):
            return "550 5.1.1 Recipient refused by the test sink"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.content)
        message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))
        self._sink._store(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                raw=raw,
            )
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    """aiosmtpd on a free loopback port; received mail is in ``messages``.

    By default anyone may send to any recipient without AUTH. With ``credentials``
    (user -> password) AUTH PLAIN/LOGIN is offered and required, over plain text
    since this is loopback only. ``accept_recipient`` can refuse some addresses
    with a 550.
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        accept_recipient: Callable[[str], bool] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.credentials = dict(credentials) if credentials is not None else None
        self.accept_recipient = accept_recipient
        self._received: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> SmtpSink:
        """Listen; returns once the server answers."""
        if self._controller is not None:
            return self
        last_error: Exception | None = None
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            controller = _Controller(
                _Handler(self),
                hostname=self.host,
                port=port,
                ready_timeout=10.0,
                **self._auth_kwargs(),
            )
            try:
                controller.start()
            except Exception as exc:
                last_error = exc
                try:
                    controller.stop()
                except Exception:
                    pass  # never started: nothing more to release
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"SMTP sink could not start on {self.host}: {last_error}")

    def stop(self) -> None:
        """Stop listening; safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- received mail ------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of everything received so far, in arrival order."""
        with self._cond:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` messages arrived; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"SMTP sink on port {self.port}: {len(self._received)} message(s) "
                        f"after {timeout:g} s, expected {count}"
                    )
                self._cond.wait(remaining)
            return list(self._received)

    def clear(self) -> None:
        with self._cond:
            self._received.clear()

    def _store(self, mail: ReceivedMail) -> None:
        with self._cond:
            self._received.append(mail)
            self._cond.notify_all()

    # --- AUTH ---------------------------------------------------------------------

    def _auth_kwargs(self) -> dict[str, Any]:
        if self.credentials is None:
            return {}
        return {
            "authenticator": self._authenticate,
            "auth_required": True,
            "auth_require_tls": False,
        }

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        credentials = self.credentials or {}
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if credentials.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)
