"""Kannel's smsbox `sendsms` HTTP interface as an SMS gateway driver.

One GET per SMS on a keep-alive pool. Kannel gives no message id: the delivery report
comes back on our `dlr-url`, which carries our own id (`{id}` in the template).

What Kannel answers (smsbox 1.4.5, seen against a real bearerbox):
  202 `0: Accepted for delivery`, 202 `3: Queued for later delivery`     -> accepted
  403 `Authorization failed for sendsms`                                 -> permanent
  400 `Missing receiver number, rejected`, `Sender missing and no global set, rejected`,
      `Number(s) has/have been denied by white- and/or black-lists.`,
      `Charset or body misformed, rejected`                              -> permanent
  503 `Temporal failure, try again later.`, any 5xx, no answer           -> transient
A refusal by the operator behind Kannel never shows here: smsbox has already answered
202, and the refusal arrives as a DLR with status 16 (`NACK/<operator's answer>`).
"""

from __future__ import annotations

import errno
import logging
from http import HTTPStatus
from urllib.parse import quote, urlencode

import aiohttp
import yarl

from gateway.drivers.base import OutgoingSms, PermanentError, TransientError

log = logging.getLogger(__name__)

#: Every report Kannel can give: 1 delivered, 2 failed, 4 buffered, 8 accepted by the
#: SMSC, 16 rejected by the SMSC.
DLR_MASK_ALL = 31
#: What we ask for: all but 8. "Accepted by the SMSC" comes back for every message at
#: once and would double the webhook traffic; the final report proves acceptance too.
DLR_MASK = 1 | 2 | 4 | 16

#: Kannel's `coding`: 0 is 7-bit (Kannel converts UTF-8 to GSM-7, `€ { } ^ é à` intact,
#: anything outside GSM-7 becomes `?`); 2 is UCS-2 (every character intact).
CODING = {"gsm7": 0, "ucs2": 2}

_ACCEPTED_PREFIXES = ("0:", "3:")
_TRANSIENT_HTTP = frozenset({408, 425, 429})
_REASON_CHARS = 200

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EPIPE: "connection closed while sending",
}


def _os_reason(exc: BaseException) -> str | None:
    """The errno-level cause buried under the HTTP client's wrappers, in words."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[current.errno]
        current = current.__cause__ or current.__context__
    text = str(exc).lower()
    for phrase in ("connection refused", "connection reset", "name or service not known"):
        if phrase in text:
            return phrase
    return None


class KannelDriver:
    """Submits SMS through Kannel's `sendsms` (smsbox `sendsms-port`)."""

    name = "kannel"

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        dlr_url_template: str | None,
        timeout: float = 10.0,
        max_connections: int = 50,
    ) -> None:
        """`url` is the full sendsms URL (`http://host:13013/cgi-bin/sendsms`).

        `dlr_url_template` is our DLR webhook with `{id}` for our message id; Kannel's
        own escapes in it (`%d`, `%T`, `%A`…) are passed through for Kannel to fill.
        """
        if dlr_url_template is not None and "{id}" not in dlr_url_template:
            raise ValueError(
                f"dlr_url_template must contain {{id}} (our message id), got {dlr_url_template!r}"
            )
        self.url = url
        self.username = username
        self.password = password
        self.dlr_url_template = dlr_url_template
        self.timeout = timeout
        parsed = yarl.URL(url)
        self.address = f"{parsed.host}:{parsed.port}"
        # aiohttp, not httpx: sendsms is one GET per SMS, and httpx's stack (httpcore,
        # anyio) spent 1.4-1.6 ms of CPU per call where aiohttp spends 70 us, which
        # capped the dispatcher near 480 SMS/s (bench/RESULTS.md).
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The keep-alive pool, made on first use (it belongs to the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout,
                                              sock_connect=self.timeout,
                                              sock_read=self.timeout),
                auto_decompress=False,
            )
        return self._session

    def params(self, sms: OutgoingSms) -> dict[str, str]:
        """The sendsms query for one SMS (percent-encoded by `submit`, `%d` as `%25d`)."""
        coding = CODING.get(sms.encoding)
        if coding is None:
            raise PermanentError(
                f"unknown encoding {sms.encoding!r} for message {sms.id}: "
                f"expected one of {sorted(CODING)}"
            )
        params = {
            "username": self.username,
            "password": self.password,
            "from": sms.sender,
            "to": sms.to,
            "text": sms.text,
            "charset": "UTF-8",
            "coding": str(coding),
        }
        if self.dlr_url_template is not None:
            params["dlr-mask"] = str(DLR_MASK)
            # str.replace, not format(): Kannel's %-escapes and other braces stay as they are.
            params["dlr-url"] = self.dlr_url_template.replace("{id}", str(sms.id))
        return params

    async def submit(self, sms: OutgoingSms) -> str | None:
        """Hand one SMS to Kannel; always None on success (Kannel gives no id)."""
        url = f"{self.url}?{urlencode(self.params(sms), quote_via=quote)}"
        try:
            # encoded: the query is sent as built, Kannel's `%d` escapes as `%25d`
            async with self._client().get(yarl.URL(url, encoded=True)) as response:
                status, content = response.status, await response.read()
        except aiohttp.ClientConnectorError as exc:
            reason = _os_reason(exc) or str(exc.os_error) or type(exc).__name__
            raise TransientError(f"Kannel unreachable at {self.address}: {reason}") from exc
        except TimeoutError as exc:
            phase = ("connecting" if isinstance(exc, aiohttp.ConnectionTimeoutError)
                     else "waiting")
            raise TransientError(
                f"Kannel at {self.address} timed out after {self.timeout:g} s ({phase})"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # The request may have reached Kannel; retrying risks a duplicate, losing it is
            # worse.
            reason = _os_reason(exc) or str(exc) or type(exc).__name__
            raise TransientError(
                f"Kannel at {self.address} dropped the connection: {reason}"
            ) from exc
        return self._outcome(sms, status, content)

    def _outcome(self, sms: OutgoingSms, status: int, content: bytes) -> None:
        body = content.decode("utf-8", "replace").strip()[:_REASON_CHARS]
        reason = _reason_phrase(status)
        if 200 <= status < 300:
            if not body.startswith(_ACCEPTED_PREFIXES):
                # A 2xx means Kannel took it; resubmitting would risk sending it twice.
                log.warning(
                    "Kannel accepted message %s with an unexpected answer: %r", sms.id, body
                )
            return None
        if status >= 500 or status in _TRANSIENT_HTTP or "temporal failure" in body.lower():
            raise TransientError(f"Kannel failed (HTTP {status}): {body or reason}")
        raise PermanentError(f"Kannel refused (HTTP {status}): {body or reason}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"
