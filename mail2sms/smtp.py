"""The SMTP intake: aiosmtpd with AUTH, a relay check, and the work done in handle_DATA."""

from __future__ import annotations

import asyncio
import logging
import ssl
import warnings
from base64 import b64decode
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mail2sms.auth import Authenticator, AuthOutcome
from mail2sms.config import Config, is_loopback
from mail2sms.parse import ParseError, parse_email
from mail2sms.service import Service

log = logging.getLogger("mail2sms.smtp")


class _QuietAiosmtpd(logging.Filter):
    """aiosmtpd warns on every connection that AUTH does not require TLS (we decide that
    per client: loopback or TLS) and on every login that its own ``login_data`` field is
    deprecated (it sets it itself): neither says anything to an admin."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "auth_require_tls" not in message and "login_data is deprecated" not in message


logging.getLogger("mail.log").addFilter(_QuietAiosmtpd())
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


def smtp_reply(code: int, enhanced: str, text: str) -> str:
    """One SMTP reply line: no CR/LF from the text, and short enough for any client."""
    text = " ".join(text.split())
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{code} {enhanced} {text}"


def auth_needs_tls(peer_host: str | None, require_tls: bool) -> bool:
    """AUTH sends a password: only over TLS, except from this machine itself."""
    return require_tls or not is_loopback(peer_host)


class Mail2SmsSMTP(SMTP):
    """aiosmtpd's server with asynchronous password checks.

    aiosmtpd's own PLAIN/LOGIN call a synchronous authenticator; argon2 inside it would
    stall every other client for tens of milliseconds per login.
    """

    def __init__(self, handler: SmtpHandler, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self._m2s = handler

    def _tls_refused(self) -> bool:
        peer = self.session.peer[0] if self.session and self.session.peer else None
        return auth_needs_tls(peer, self._m2s.config.smtp.require_tls) and not self._tls_protocol

    async def _finish_auth(self, login: bytes, password: bytes) -> AuthResult:
        peer = self.session.peer[0] if self.session and self.session.peer else "?"
        outcome, user = await self._m2s.authenticator.check(str(peer), login, password)
        if outcome == AuthOutcome.OK:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        if outcome == AuthOutcome.THROTTLED:
            log.warning("AUTH throttled for %s (user %s)", peer, user)
            return AuthResult(
                success=False, handled=False,
                message=smtp_reply(454, "4.7.0", "too many failed logins; try again later"),
            )
        log.info("AUTH failed for %s (user %s)", peer, user)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Authentication credentials invalid"
        )

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if self._tls_refused():
            return AuthResult(success=False, handled=False, message=smtp_reply(
                538, "5.7.11", "Encryption required: use STARTTLS before AUTH"))
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except Exception:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._finish_auth(parts[1], parts[2])

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if self._tls_refused():
            return AuthResult(success=False, handled=False, message=smtp_reply(
                538, "5.7.11", "Encryption required: use STARTTLS before AUTH"))
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = b64decode(args[1].encode(), validate=True)
            except Exception:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._finish_auth(login, password)


class SmtpHandler:
    """aiosmtpd handler: every SMTP step answered with its exact code."""

    def __init__(self, config: Config, service: Service, authenticator: Authenticator):
        self.config = config
        self.service = service
        self.authenticator = authenticator
        self.domains = set(config.smtp.domains)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        domain = address.rpartition("@")[2].strip().lower()
        if domain not in self.domains:
            return smtp_reply(550, "5.7.1", f"relaying denied: this server accepts mail for "
                              f"{', '.join(sorted(self.domains))} only")
        if len(envelope.rcpt_tos) >= 1000:
            return smtp_reply(452, "4.5.3", "too many recipients")
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        user = session.auth_data.login.decode() if session.auth_data else None
        if not user:  # aiosmtpd refuses MAIL without AUTH; this is belt and braces
            return smtp_reply(530, "5.7.0", "authentication required")
        raw = envelope.original_content or b""
        try:
            request = parse_email(
                raw, user=user, domains=self.config.smtp.domains,
                timezone=self.config.compliance.timezone, rcpt_tos=list(envelope.rcpt_tos),
            )
        except ParseError as exc:
            self.service.report_parse_error(user, raw, exc.message)
            enhanced = "5.6.0" if exc.code >= 500 else "4.6.0"
            return smtp_reply(exc.code, enhanced, exc.message)
        except Exception:  # a parser bug must not cost the client its message silently
            log.exception("unexpected error while reading an email from %s", user)
            return smtp_reply(451, "4.3.0", "internal error while reading the message; "
                              "try again later")
        try:
            outcome = await self.service.submit(request)
        except Exception:
            log.exception("could not queue a request from %s", user)
            return smtp_reply(451, "4.3.0", "temporary failure while queueing; try again later")
        if outcome.plan.refused:
            return smtp_reply(550, "5.7.0", f"SMS refused: {outcome.plan.refused}")
        return smtp_reply(250, "2.0.0", outcome.summary)


def make_tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def start_smtp(config: Config, service: Service, host: str, port: int) -> asyncio.Server:
    """Listen for SMTP in the running loop."""
    authenticator = Authenticator(
        config.users, max_failures=config.smtp.auth_max_failures, window=config.smtp.auth_window
    )
    handler = SmtpHandler(config, service, authenticator)
    tls = None
    if config.smtp.tls_cert and config.smtp.tls_key:
        tls = make_tls_context(config.smtp.tls_cert, config.smtp.tls_key)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return Mail2SmsSMTP(
            handler,
            data_size_limit=config.smtp.max_message_bytes,
            hostname=config.smtp.hostname,
            tls_context=tls,
            require_starttls=bool(tls) and config.smtp.require_tls,
            auth_required=True,
            auth_require_tls=False,  # decided per peer in Mail2SmsSMTP._tls_refused
            loop=loop,
            timeout=120,
        )

    return await loop.create_server(factory, host=host, port=port)
