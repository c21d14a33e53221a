"""Outgoing mail (replies, reports) through the relay in ``mail_out``."""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.message import Message

import aiosmtplib

from gateway.config import MailOutConfig

log = logging.getLogger(__name__)

#: Failures worth one more try: reaching the relay, not its answer to our mail (a read
#: timeout after DATA is not retried: the relay may have queued the message already).
_TRANSIENT = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPConnectTimeoutError,
    aiosmtplib.SMTPServerDisconnected,
    ConnectionError,
)


class MailError(Exception):
    """The relay could not take a message; the text says why."""


def _split_relay(relay: str) -> tuple[str, int]:
    host, sep, port = relay.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"mail_out.relay must be host:port, got {relay!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class Mailer:
    """Sends through the relay: ``send`` one message per connection, ``send_batch``
    several over one connection (report bursts after a busy minute)."""

    def __init__(
        self,
        cfg: MailOutConfig,
        *,
        tls_context: ssl.SSLContext | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.host, self.port = _split_relay(cfg.relay)
        self.tls_context = tls_context
        self.retry_delay = retry_delay

    async def send(self, message: Message, recipients: list[str] | None = None) -> None:
        """Hand ``message`` to the relay (recipients from its headers unless given).

        The envelope sender is ``mail_out.from`` so bounces come to us; a missing
        ``From`` header gets the same address. Raises MailError.
        """
        if message["From"] is None:
            message["From"] = self.cfg.from_
        for attempt in (1, 2):
            try:
                await aiosmtplib.send(
                    message,
                    sender=self.cfg.from_,
                    recipients=recipients,
                    hostname=self.host,
                    port=self.port,
                    username=self.cfg.username,
                    password=self.cfg.password,
                    # False rather than None: aiosmtplib would otherwise upgrade whenever
                    # the relay offers it, and fail on a relay's self-signed certificate.
                    start_tls=self.cfg.starttls,
                    tls_context=self.tls_context,
                    timeout=self.cfg.timeout,
                )
                return
            except _TRANSIENT as exc:
                if attempt == 2:
                    raise MailError(f"mail relay {self.cfg.relay} unreachable: {exc}") from exc
                log.info("mailer: %s; trying again in %.0f s", exc, self.retry_delay)
                await asyncio.sleep(self.retry_delay)
            except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
                raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> MailError:
        """What the relay said, in one sentence naming it."""
        relay = self.cfg.relay
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return MailError(f"mail relay {relay} refused the login of {self.cfg.username!r}: "
                             f"{exc.code} {exc.message}")
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            refused = ", ".join(f"{e.recipient} ({e.code} {e.message})" for e in exc.recipients)
            return MailError(f"mail relay {relay} refused {refused}")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return MailError(f"mail relay {relay} said {exc.code} {exc.message}")
        return MailError(f"mail relay {relay}: {exc}")

    async def send_batch(self, messages: list[Message]) -> list[MailError | None]:
        """Send ``messages`` over one connection; the error of each, None when sent.

        A relay that cannot be reached fails them all with the same error.
        """
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.cfg.username,
            password=self.cfg.password,
            start_tls=self.cfg.starttls,
            tls_context=self.tls_context,
            timeout=self.cfg.timeout,
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return [self._error(exc)] * len(messages)
        results: list[MailError | None] = []
        try:
            for message in messages:
                if message["From"] is None:
                    message["From"] = self.cfg.from_
                try:
                    await smtp.send_message(message, sender=self.cfg.from_)
                    results.append(None)
                except (aiosmtplib.SMTPResponseException,
                        aiosmtplib.SMTPRecipientsRefused) as exc:
                    results.append(self._error(exc))  # this message only
                except (aiosmtplib.SMTPException, OSError) as exc:
                    # the connection is gone: the rest cannot go either
                    results += [self._error(exc)] * (len(messages) - len(results))
                    break
        finally:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
        return results
