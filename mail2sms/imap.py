"""The IMAP intake: a mailbox on an existing mail server, watched with IDLE or polling.

Every email in the watched mailbox is new by definition: once handled it is flagged and
moved away. Double processing is prevented in three layers, each durable on its own:
the move itself; a keyword set before the move (a crash between the two finishes the
move on restart, nothing is redone); and the store, checked before submitting (a crash
between the commit and the keyword finds the request already there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import TypeVar

from aioimaplib import IMAP4, AioImapException, Response

from mail2sms.authresults import authenticated
from mail2sms.config import Config, is_loopback
from mail2sms.parse import ParseError, parse_email
from mail2sms.service import Service
from store import queries

log = logging.getLogger("mail2sms.imap")
T = TypeVar("T")

DONE = "$Mail2SmsDone"  # taken: goes to the processed folder
REFUSED = "$Mail2SmsRefused"  # not taken: goes to the error folder
_TIMEOUT = 30.0  # any single IMAP command
_IDLE_MAX = 29 * 60.0  # RFC 2177: renew IDLE before servers drop it at 30 minutes
_BACKOFF_MAX = 60.0
_FETCH_LINE = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|RFC822\.SIZE (\d+)")
_DELIMITER = re.compile(rb'\) (?:"((?:[^"\\]|\\.)*)"|NIL) ')


class ImapFailure(Exception):
    """The server said NO or BAD to something the intake cannot do without."""


_CONNECTION_ERRORS = (OSError, TimeoutError, AioImapException, ImapFailure)


def _text(response: Response) -> bytes:
    return b" ".join(line for line in response.lines if isinstance(line, bytes))


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapIntake:
    """Watches ``config.imap.mailbox``; hands each email to ``service`` like SMTP does."""

    def __init__(self, config: Config, service: Service) -> None:
        self.config = config
        self.imap = config.imap
        self.service = service
        if not self.imap.ssl and not is_loopback(self.imap.host):
            raise ValueError(f"imap.ssl is false for {self.imap.host}: the password would "
                             "cross the network in clear; plain IMAP is for loopback only")
        self._client: IMAP4 | None = None
        self._lost = asyncio.Event()
        self._delimiter = "/"
        self._uidvalidity = ""
        self._selected_once = False
        self._keywords = True

    @property
    def _where(self) -> str:
        return f"{self.imap.username}@{self.imap.host}:{self.imap.port}/{self.imap.mailbox}"

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``: reconnect with backoff whenever the connection fails."""
        backoff = 1.0
        while not stop.is_set():
            try:
                await self._session(stop)
            except Exception as exc:
                if stop.is_set():
                    break
                if self._selected_once:  # it worked until now: try again soon
                    backoff = 1.0
                if not isinstance(exc, _CONNECTION_ERRORS):
                    log.exception("IMAP intake error; reconnecting in %.0f s", backoff)
                else:
                    log.warning("IMAP %s: %s; reconnecting in %.0f s", self._where,
                                str(exc) or type(exc).__name__, backoff)
            finally:
                await self._disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)
        log.info("IMAP intake stopped")

    async def _bounded(self, call: Awaitable[T]) -> T:
        """``call``'s result, or an error as soon as the connection drops or it times out."""
        task = asyncio.ensure_future(call)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=_TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if self._lost.is_set():
            raise ConnectionError("connection lost")
        raise TimeoutError(f"no answer from the server within {_TIMEOUT:g} s")

    async def _cmd(self, call: Awaitable[Response], *, ok: bool = True) -> Response:
        response = await self._bounded(call)
        if ok and response.result != "OK":
            raise ImapFailure(_text(response).decode(errors="replace") or response.result)
        return response

    async def _session(self, stop: asyncio.Event) -> None:
        self._selected_once = False
        context = ssl.create_default_context(cafile=self.imap.ca_file) if self.imap.ssl else None
        lost = self._lost = asyncio.Event()
        client = self._client = IMAP4(self.imap.host, self.imap.port, timeout=_TIMEOUT,
                                      conn_lost_cb=lambda _exc: lost.set(), ssl_context=context)
        await self._bounded(client.wait_hello_from_server())
        login = await self._cmd(client.login(_quote(self.imap.username), self.imap.password),
                                ok=False)
        if login.result != "OK":
            raise ImapFailure(f"login refused for {self.imap.username}")
        await self._bounded(client.protocol.capability())
        listing = await self._cmd(client.list('""', '""'))
        found = _DELIMITER.search(listing.lines[0]) if listing.lines else None
        self._delimiter = found.group(1).decode() if found and found.group(1) else "/"
        for folder in (self.imap.processed_folder, self.imap.error_folder):
            created = await self._cmd(client.create(self._folder(folder)), ok=False)
            if created.result != "OK" and b"ALREADYEXISTS" not in _text(created):
                await self._cmd(client.status(self._folder(folder), "(MESSAGES)"))
        selected = _text(await self._cmd(client.select(_quote(self.imap.mailbox))))
        if m := re.search(rb"UIDVALIDITY (\d+)", selected):
            self._uidvalidity = m.group(1).decode()
        # Without custom keywords the store check alone guards a crash before the move.
        m = re.search(rb"PERMANENTFLAGS \(([^)]*)\)", selected)
        self._keywords = not m or b"\\*" in m.group(1)
        self._selected_once = True
        idle = self.imap.idle and client.has_capability("IDLE")
        log.info("IMAP intake watching %s (%s)", self._where,
                 "IDLE" if idle else f"polling every {self.imap.poll_interval:g} s")
        while not stop.is_set():
            await self._take_all(stop)
            if idle:
                await self._idle(stop)
            else:
                await self._poll(stop)

    def _folder(self, name: str) -> str:
        return _quote(name.replace("/", self._delimiter))

    async def _idle(self, stop: asyncio.Event) -> None:
        client = self._client
        assert client is not None
        queue = client.protocol.idle_queue
        while not queue.empty():  # pushes left from the last round are stale now
            queue.get_nowait()
        renew = min(self.imap.poll_interval, _IDLE_MAX)
        idling = await self._bounded(client.idle_start(timeout=renew))
        push = asyncio.ensure_future(client.wait_server_push(renew + _TIMEOUT))
        waits = [push, asyncio.ensure_future(stop.wait()),
                 asyncio.ensure_future(self._lost.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        said = push.result() if push.done() and not push.cancelled() else []
        if self._lost.is_set() or any(line.startswith(b"BYE") for line in said):
            raise ConnectionError("the server closed the connection during IDLE")
        client.idle_done()
        await self._bounded(idling)

    async def _poll(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.imap.poll_interval)
        if not stop.is_set() and self._client is not None:
            await self._cmd(self._client.noop())  # lets the server report new mail

    async def _take_all(self, stop: asyncio.Event) -> None:
        """Handle every message now in the mailbox, oldest first."""
        assert self._client is not None
        listing = await self._cmd(self._client.uid("fetch", "1:*", "(UID FLAGS RFC822.SIZE)"))
        found: list[tuple[int, set[str], int]] = []
        for line in listing.lines:
            parts: dict[int, bytes] = {}
            for m in _FETCH_LINE.finditer(line if isinstance(line, bytes) else b""):
                parts.update((i, g) for i, g in enumerate(m.groups()) if g is not None)
            if 0 in parts:
                found.append((int(parts[0]), set(parts.get(1, b"").decode().split()),
                              int(parts.get(2, b"0"))))
        for uid, flags, size in sorted(found):
            if stop.is_set():
                return
            if DONE in flags or REFUSED in flags:
                log.info("IMAP uid %d was handled before a restart: finishing its move", uid)
                await self._file(uid, taken=DONE in flags)
            else:
                try:
                    taken = await self._handle(uid, size)
                except _CONNECTION_ERRORS:
                    raise
                except Exception:  # e.g. the database is away: left in place, tried again
                    log.exception("IMAP uid %d could not be handled; it stays in %s for "
                                  "the next round", uid, self.imap.mailbox)
                    continue
                await self._file(uid, taken=taken)

    async def _fetch(self, uid: int, part: str) -> bytes:
        assert self._client is not None
        response = await self._cmd(self._client.uid("fetch", str(uid), f"(UID {part})"))
        literal = next((x for x in response.lines if isinstance(x, bytearray)), None)
        if literal is None:
            raise ImapFailure(f"uid {uid}: no {part} in the server's answer")
        return bytes(literal)

    async def _handle(self, uid: int, size: int) -> bool:
        """Authorise and process one email; True when taken, False when refused."""
        limit = self.config.smtp.max_message_bytes
        raw = await self._fetch(uid, "BODY.PEEK[HEADER]" if size > limit else "BODY.PEEK[]")
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        senders = [a for _, a in getaddresses(headers.get_all("From") or []) if "@" in a]
        user = self.config.user(senders[0]) if len(senders) == 1 else None
        if user is None:
            log.warning("IMAP uid %d refused, no report sent: From %s is not a configured "
                        "user", uid, ", ".join(senders) or "(none)")
            return False
        if str(headers.get("Auto-Submitted", "no")).strip().lower() != "no":
            log.warning("IMAP uid %d from %s refused, no report sent: it is an automatic "
                        "message (Auto-Submitted)", uid, user.email)
            return False
        if self.imap.trusted_authserv_id:
            why = authenticated(headers, self.imap.trusted_authserv_id,
                                user.email.rpartition("@")[2])
            if why:
                log.warning("IMAP uid %d from %s refused, no report sent: %s", uid,
                            user.email, why)
                return False
        key = ("".join(str(headers.get("Message-ID", "")).split())
               or f"<imap.{self._uidvalidity}.{uid}@{self.imap.host}>")
        status = await self.service.db.run(
            lambda s: queries.request_status_of_email(s, key, user.email, "imap"))
        if status is not None:
            log.info("IMAP uid %d from %s was already taken as %s: not sent again", uid,
                     user.email, key)
            return status != "refused"
        try:
            if size > limit:
                raise ParseError(552, f"the message is too big ({size} bytes; the limit is "
                                      f"{limit})")
            request = parse_email(
                raw, user=user.email, domains=self.config.smtp.domains,
                timezone=self.config.compliance.timezone, rcpt_tos=None, source="imap")
        except ParseError as exc:
            log.info("IMAP uid %d from %s not sent: %s", uid, user.email, exc.message)
            self.service.report_parse_error(user.email, raw, exc.message)
            return False
        request.email_message_id = key  # the durable mark of this email in the store
        outcome = await self.service.submit(request)
        log.info("IMAP uid %d from %s: %s", uid, user.email,
                 f"refused: {outcome.plan.refused}" if outcome.plan.refused
                 else outcome.summary)
        return not outcome.plan.refused

    async def _file(self, uid: int, *, taken: bool) -> None:
        """Flag, then move to the processed or error folder."""
        client = self._client
        assert client is not None
        keyword = DONE if taken else REFUSED
        folder = self._folder(self.imap.processed_folder if taken else self.imap.error_folder)
        flags = f"\\Seen {keyword}" if self._keywords else "\\Seen"
        await self._cmd(client.uid("store", str(uid), "+FLAGS.SILENT", f"({flags})"))
        if client.has_capability("MOVE"):
            await self._cmd(client.uid("move", str(uid), folder))
            return
        await self._cmd(client.uid("copy", str(uid), folder))
        await self._cmd(client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Deleted)"))
        if client.has_capability("UIDPLUS"):
            await self._cmd(client.uid("expunge", str(uid)))
        else:
            await self._cmd(client.expunge())

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(*_CONNECTION_ERRORS):
            if not self._lost.is_set() and client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 5)
        if client.protocol.transport is not None:
            client.protocol.transport.close()
