"""Kannel's two webhooks, MO (``get-url``) and DLR (``dlr-url``), answered before the web
framework sees the request.

Kannel calls them once per received SMS and once per delivery report, by the thousand a
second during a campaign. Routing, dependency solving and the middleware stack of
FastAPI cost about as much as storing the SMS or the report; these plain ASGI routes do
the same work without them and hand every other request to the application.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.dlr import DlrRecorder, from_kannel
from inbound import mo
from inbound.model import utc_clock
from sms.phones import mask

log = logging.getLogger("mail2sms.api")

MO_PATH = "/webhooks/kannel/mo"
DLR_PATH = "/webhooks/kannel/dlr"
#: A form body above this is no SMS (10,000 characters percent-encoded stay under it).
MAX_BODY = 256 * 1024

#: The request's parameters (query string, then form body) -> status and body.
Handler = Callable[[dict[str, bytes]], Awaitable[tuple[int, bytes]]]
#: Takes one received SMS; raises when it could not be stored.
Take = Callable[[mo.Received], Awaitable[object]]


class KannelHooks:
    """``GET|POST`` on each path of ``handlers``, with the webhook token in ``token=``
    or ``Authorization: Bearer``; 401 without it, 405 for another method, 413 for a
    body over MAX_BODY. Every other path goes to ``app``."""

    def __init__(self, app: ASGIApp, *, token: str, handlers: Mapping[str, Handler]) -> None:
        self.app = app
        self.token = token.encode()
        self.handlers = dict(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        await _answer(send, *await self._handle(handler, scope, receive))

    async def _handle(self, handler: Handler, scope: Scope,
                      receive: Receive) -> tuple[int, bytes]:
        method = scope["method"]
        if method not in ("GET", "POST"):
            return 405, b""
        values = mo.raw_params(scope.get("query_string", b""))
        if not self._authorised(values.get("token"), scope):
            return 401, b"missing or wrong webhook token"
        if method == "POST" and _is_form(scope):
            body = await _body(receive)
            if body is None:
                return 413, b""
            values.update(mo.raw_params(body))
        return await handler(values)

    def _authorised(self, given: bytes | None, scope: Scope) -> bool:
        if not given:
            for name, value in scope["headers"]:
                if name == b"authorization" and value[:7].lower() == b"bearer ":
                    given = value[7:].strip()
        return bool(given) and hmac.compare_digest(given or b"", self.token)


def mo_handler(take: Take, *, country: str) -> Handler:
    """``/webhooks/kannel/mo?from=%p&to=%P&text=%a&ts=%t&id=%I``.

    Every answer has an empty body: Kannel sends a non-empty one to the phone as an SMS,
    and replies go out through the outbox instead. 200 once the SMS is stored (and its
    reply queued), 400 for an MO that cannot be read, 503 when the database could not
    take it (Kannel tries again).
    """

    async def handle(values: dict[str, bytes]) -> tuple[int, bytes]:
        try:
            received = mo.from_kannel(values, country=country, now=utc_clock())
        except mo.BadMo as exc:
            log.warning("Kannel MO refused: %s", exc)
            return 400, b""
        try:
            await take(received)
        except Exception:
            log.exception("MO from %s not stored", mask(received.sms.sender))
            return 503, b""
        return 200, b""

    return handle


def dlr_handler(recorder: DlrRecorder, *, unassigned_errors: Sequence[str]) -> Handler:
    """``/webhooks/kannel/dlr?id=<our message id>&status=%d&answer=%A``.

    200 ``OK`` once stored; 202 for a message we do not know (the report is kept); 400
    naming what is wrong; 503 when the database could not take it (Kannel tries again).
    """

    async def handle(values: dict[str, bytes]) -> tuple[int, bytes]:
        try:
            message_id = int(values.get("id", b""))
            code = int(values.get("status", b""))
        except ValueError:
            return 400, b"expected id=<message id>&status=<Kannel %d>"
        raw = values.get("answer") or values.get("reply")
        answer = raw.decode("utf-8", "replace") if raw else None
        try:
            update = from_kannel(code, answer, unassigned_errors)
        except ValueError as exc:  # a code Kannel does not send
            return 400, str(exc).encode()
        try:
            message = await recorder.record(update, message_id=message_id)
        except Exception:
            log.exception("DLR for message %s not stored", message_id)
            return 503, b""
        if message is None:
            log.warning("DLR for unknown message id %s (status %s)", message_id, code)
            return 202, b"unknown message id (report kept)"
        return 200, b"OK"

    return handle


def _is_form(scope: Scope) -> bool:
    return any(name == b"content-type" and b"application/x-www-form-urlencoded" in value
               for name, value in scope["headers"])


async def _body(receive: Receive) -> bytes | None:
    """The request body; None when it is larger than MAX_BODY."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    if status == 405:
        headers.append((b"allow", b"GET, POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
