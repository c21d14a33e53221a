"""Kannel's MO webhook (``get-url``), answered before the web framework sees the request.

Kannel calls it once per received SMS, hundreds of times a second at peak. Routing,
dependency solving and the middleware stack of FastAPI cost about as much as storing
the SMS and queueing its reply; this plain ASGI route does the same work without them
and hands every other request to the application.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from inbound import mo
from inbound.model import utc_clock
from sms.phones import mask

log = logging.getLogger("mail2sms.api")

PATH = "/webhooks/kannel/mo"
#: A form body above this is no SMS (10,000 characters percent-encoded stay under it).
MAX_BODY = 256 * 1024

#: Takes one received SMS; raises when it could not be stored.
Take = Callable[[mo.Received], Awaitable[object]]


class KannelMoRoute:
    """``GET|POST /webhooks/kannel/mo?token=…&from=%p&to=%P&text=%a&ts=%t&id=%I``.

    Every answer has an empty body: Kannel sends a non-empty one to the phone as an SMS,
    and replies go out through the outbox instead. 200 once the SMS is stored (and its
    reply queued), 400 for an MO that cannot be read, 401 without the webhook token,
    503 when the database could not take it (Kannel tries again).
    """

    def __init__(self, app: ASGIApp, take: Take, *, token: str, country: str) -> None:
        self.app = app
        self.take = take
        self.token = token.encode()
        self.country = country

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        await _answer(send, *await self._handle(scope, receive))

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
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
        try:
            received = mo.from_kannel(values, country=self.country, now=utc_clock())
        except mo.BadMo as exc:
            log.warning("Kannel MO refused: %s", exc)
            return 400, b""
        try:
            await self.take(received)
        except Exception:
            log.exception("MO from %s not stored", mask(received.sms.sender))
            return 503, b""
        return 200, b""

    def _authorised(self, given: bytes | None, scope: Scope) -> bool:
        if not given:
            for name, value in scope["headers"]:
                if name == b"authorization" and value[:7].lower() == b"bearer ":
                    given = value[7:].strip()
        return bool(given) and hmac.compare_digest(given or b"", self.token)


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
