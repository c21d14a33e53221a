"""A fake mobile operator: the SMSC behind Kannel's `smsc = http`, `system-type = kannel`.

Kannel delivers every MT as `GET /send?username=..&password=..&from=..&to=..&text=..
&coding=..&charset=..&dlr-mask=..&dlr-url=..[&udh=..]`. This server records each one,
answers the way a Kannel-speaking SMSC does, and can play the network's delivery report
back by calling the `dlr-url` it was given.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers.ports import free_port

ACCEPTED = "0: Accepted for delivery"

# Kannel's delivery-report codes (`%d` in a dlr-url).
DLR_DELIVERED = 1
DLR_FAILED = 2
DLR_BUFFERED = 4
DLR_SMSC_ACCEPTED = 8
DLR_SMSC_REJECTED = 16


# How bearerbox wraps the sender's dlr-url in its own when the smsc has a `dlr-url`:
# <smsc dlr-url>&dlr-url=<original>&dlr-mask=%d&dlr-mid=<Kannel's uuid>
_WRAP_URL = "&dlr-url="
_WRAP_MASK = "&dlr-mask=%d"
_WRAP_MID = "&dlr-mid="


@dataclass(frozen=True)
class Mt:
    """One MT as the operator received it from Kannel (`from` is a keyword: `sender`)."""

    sender: str
    to: str
    text: str  # `text` decoded with the `charset` Kannel announced
    raw_text: bytes  # the same, undecoded: segments of a split UCS-2 text join on bytes
    charset: str | None
    coding: int | None
    dlr_mask: int | None
    dlr_url: str | None
    udh: bytes
    username: str | None
    password: str | None
    params: dict[str, str] = field(repr=False)  # every parameter, latin-1 decoded
    received_at: float = 0.0

    @property
    def dlr_mid(self) -> str | None:
        """Kannel's message id, present when the dlr-url leads back into bearerbox."""
        if not self.dlr_url or _WRAP_MID not in self.dlr_url:
            return None
        return self.dlr_url.rsplit(_WRAP_MID, 1)[1]

    @property
    def original_dlr_url(self) -> str | None:
        """The dlr-url given to sendsms, unwrapped from bearerbox's own when wrapped."""
        url = self.dlr_url
        if not url or _WRAP_MID not in url or _WRAP_URL not in url:
            return url
        inner = url.split(_WRAP_URL, 1)[1].rsplit(_WRAP_MID, 1)[0]
        return inner.removesuffix(_WRAP_MASK)

    @property
    def concat(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) from a concatenation UDH, None when unsplit."""
        udh = self.udh
        i = 1  # udh[0] is the header length
        while i + 1 < len(udh):
            iei, length = udh[i], udh[i + 1]
            data = udh[i + 2 : i + 2 + length]
            if iei == 0x00 and length == 3:
                return data[0], data[1], data[2]
            if iei == 0x08 and length == 4:
                return (data[0] << 8) | data[1], data[2], data[3]
            i += 2 + length
        return None


@dataclass(frozen=True)
class DlrCall:
    """One delivery report the operator sent back: the URL and what came of it."""

    url: str
    status: int | None  # HTTP status, None when the call itself failed
    error: str | None
    body: str = ""
    attempts: int = 1


def decode_text(raw: bytes, charset: str | None) -> str:
    """Decode `text` as Kannel announced it; undecodable bytes become U+FFFD, visibly."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name is a finding, not a crash
        return raw.decode("latin-1")


def join_parts(mts: Iterable[Mt]) -> list[str]:
    """Reassemble concatenated MTs into whole texts, in order of first arrival.

    Parts are joined on their raw bytes before decoding: Kannel splits UCS-2 on octet
    boundaries, so a surrogate pair may straddle two parts.
    """
    groups: dict[tuple[str, str, int] | int, list[Mt]] = {}
    for index, mt in enumerate(mts):
        info = mt.concat
        key: tuple[str, str, int] | int = (mt.sender, mt.to, info[0]) if info else index
        groups.setdefault(key, []).append(mt)
    texts = []
    for parts in groups.values():
        parts.sort(key=lambda mt: mt.concat[2] if mt.concat else 0)
        texts.append(decode_text(b"".join(mt.raw_text for mt in parts), parts[0].charset))
    return texts


_STAT = {
    DLR_DELIVERED: "DELIVRD",
    DLR_FAILED: "UNDELIV",
    DLR_BUFFERED: "ENROUTE",
    DLR_SMSC_ACCEPTED: "ACCEPTD",
    DLR_SMSC_REJECTED: "REJECTD",
}


def receipt_text(status: int, mt: Mt) -> str:
    """An SMPP-style receipt, what a real operator puts in a DLR's text (Kannel's `%A`)."""
    now = time.strftime("%y%m%d%H%M")
    done = "001" if status == DLR_DELIVERED else "000"
    return (
        f"id:{mt.dlr_mid or 0} sub:001 dlvrd:{done} submit date:{now} done date:{now} "
        f"stat:{_STAT.get(status, 'UNKNOWN')} err:000 text:{mt.text[:20]}"
    )


def expand_dlr_url(url: str, status: int, answer: str = "") -> str:
    """Fill a dlr-url the way the next hop does: `%d` is the report's status.

    Behind `dlr_via_kannel` the URL leads back into bearerbox and only `%d` matters; when
    it is ours, unwrapped, `%A` and `%T` are filled too (Kannel would have) so the call
    is a valid request. Any other `%x` is left alone.
    """
    url = url.replace("%d", str(status))
    url = url.replace("%A", urllib.parse.quote(answer, safe=""))
    url = url.replace("%T", str(int(time.time())))
    if answer and "dlr-mid=" in url:
        # bearerbox takes the report's text from `text` and hands it to us as %A.
        url += "&text=" + urllib.parse.quote(answer, safe="")
    return url


def _kannel_accepts(status: int, body: str) -> bool:
    """What Kannel's http smsc (`system-type = kannel`) takes as success."""
    return status in (200, 202) and (
        body.lower() in (ACCEPTED.lower(), "sent.", "ok.") or body.startswith("Result: OK")
    )


def _bytes_params(query: str) -> dict[str, bytes]:
    # latin-1 maps each %XX to one code point, so .encode("latin-1") gives back the exact
    # octets Kannel sent whatever their charset (UTF-16BE text is not valid UTF-8).
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, encoding="latin-1")
    return {key: value.encode("latin-1") for key, value in pairs}


def _int_or_none(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class FakeOperator:
    """Threaded HTTP server on 127.0.0.1 recording Kannel's MTs.

    Behaviour is set through attributes, per test: `answer_status`/`answer_body` (what
    each MT gets back; `fail()` sets a failure), `delay` (seconds before answering),
    `auto_dlr` (a Kannel DLR code to report for every MT that carries a dlr-url, sent
    from a background pool so Kannel's connection is never held), `dlr_delay`.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.answer_status = 202
        self.answer_body = ACCEPTED
        self.delay = 0.0
        self.auto_dlr: int | None = None
        self.dlr_delay = 0.0
        self.requests = 0
        self._mts: list[Mt] = []
        self._dlr_calls: list[DlrCall] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dlr_pool: ThreadPoolExecutor | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where Kannel's `send-url` points."""
        return f"http://127.0.0.1:{self.port}/send"

    def start(self) -> FakeOperator:
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self.port), _Handler, self)
        self._dlr_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-op-dlr")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-operator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._dlr_pool is not None:
            self._dlr_pool.shutdown(wait=True, cancel_futures=True)
            self._dlr_pool = None

    def __enter__(self) -> FakeOperator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour -------------------------------------------------------------------

    def fail(self, status: int = 500, body: str = "Temporal failure") -> None:
        """Answer every following MT with this failure."""
        self.answer_status, self.answer_body = status, body

    def reset(self) -> None:
        """Forget what was received and go back to accepting everything at once."""
        with self._cond:
            self._mts.clear()
            self._dlr_calls.clear()
            self.requests = 0
        self.answer_status, self.answer_body = 202, ACCEPTED
        self.delay, self.auto_dlr, self.dlr_delay = 0.0, None, 0.0

    # -- what was received -----------------------------------------------------------

    @property
    def messages(self) -> list[Mt]:
        with self._cond:
            return list(self._mts)

    @property
    def dlr_calls(self) -> list[DlrCall]:
        with self._cond:
            return list(self._dlr_calls)

    def count(self) -> int:
        with self._cond:
            return len(self._mts)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Mt]:
        """Wait until at least n MTs were recorded; return them all.

        Raises TimeoutError naming how many arrived, so a failing test says how far it got.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._mts) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"fake operator got {len(self._mts)} of {n} MT(s) in {timeout} s: "
                        f"{[(m.to, m.text[:40]) for m in self._mts[-5:]]}"
                    )
                self._cond.wait(left)
            return list(self._mts)

    async def await_for(self, n: int, timeout: float = 10.0) -> list[Mt]:
        """`wait_for` without blocking the event loop (for tests whose server shares it)."""
        return await asyncio.to_thread(self.wait_for, n, timeout)

    def wait_for_dlr_calls(self, n: int, timeout: float = 10.0) -> list[DlrCall]:
        """Wait until n delivery reports were sent back (successfully or not)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._dlr_calls) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"fake operator sent {len(self._dlr_calls)} of {n} DLR(s) in {timeout} s"
                    )
                self._cond.wait(left)
            return list(self._dlr_calls)

    # -- delivery reports ------------------------------------------------------------

    def send_dlr(
        self,
        mt: Mt,
        status: int,
        answer: str | None = None,
        timeout: float = 5.0,
        attempts: int = 10,
    ) -> DlrCall:
        """Call the MT's dlr-url now, in this thread, with `%d` = status.

        `answer` is the report's text (default: an SMPP-style receipt for that status).
        bearerbox files an MT for DLR matching only once it has read our answer, so a very
        quick report can find nothing (`Unknown DLR, not accepted`): like a real SMSC, we
        try again, a bounded number of times.
        """
        if not mt.dlr_url:
            raise ValueError(f"MT to {mt.to} carries no dlr-url")
        if answer is None:
            answer = receipt_text(status, mt)
        url = expand_dlr_url(mt.dlr_url, status, answer)
        for attempt in range(1, attempts + 1):
            call = self._call(url, timeout, attempt)
            if not call.body.startswith("Unknown DLR") or attempt == attempts:
                break
            time.sleep(0.02 * attempt)
        with self._cond:
            self._dlr_calls.append(call)
            self._cond.notify_all()
        return call

    @staticmethod
    def _call(url: str, timeout: float, attempt: int) -> DlrCall:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read().decode("utf-8", "replace")
                return DlrCall(url, response.status, None, body, attempt)
        except urllib.error.HTTPError as exc:
            return DlrCall(url, exc.code, str(exc), "", attempt)
        except (OSError, ValueError) as exc:
            return DlrCall(url, None, f"{type(exc).__name__}: {exc}", "", attempt)

    def _record(self, mt: Mt) -> None:
        with self._cond:
            self._mts.append(mt)
            self._cond.notify_all()

    def _answered(self, mt: Mt, *, accepted: bool) -> None:
        """After our answer is on the wire: schedule the automatic report, if any."""
        status, pool = self.auto_dlr, self._dlr_pool
        # A refused MT gets no report from us: Kannel itself reports it as 16 (NACK).
        if accepted and status is not None and mt.dlr_url and pool is not None:
            pool.submit(self._delayed_dlr, mt, status, self.dlr_delay)

    def _delayed_dlr(self, mt: Mt, status: int, delay: float) -> None:
        if delay:
            time.sleep(delay)
        self.send_dlr(mt, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Kannel opens many keep-alive connections at once under load.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: Any, operator: FakeOperator) -> None:
        self.operator = operator
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real SMSC gateway would offer
    # Headers and body leave in two writes; with Nagle the body waits for Kannel's delayed
    # ACK (~40 ms per MT), which capped Kannel at ~225 MT/s instead of the box's own limit.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        operator = self.server.operator
        query = urllib.parse.urlsplit(self.path).query
        self._handle(operator, query)

    def do_POST(self) -> None:
        operator = self.server.operator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("latin-1") if length else ""
        query = urllib.parse.urlsplit(self.path).query
        self._handle(operator, "&".join(part for part in (query, body) if part))

    def _handle(self, operator: FakeOperator, query: str) -> None:
        with operator._cond:
            operator.requests += 1
        params = _bytes_params(query)
        charset = params.get("charset", b"").decode("ascii", "replace") or None
        raw_text = params.get("text", b"")

        def text_param(name: str) -> str | None:
            value = params.get(name)
            return value.decode("utf-8", "replace") if value is not None else None

        mt = Mt(
            sender=text_param("from") or "",
            to=text_param("to") or "",
            text=decode_text(raw_text, charset),
            raw_text=raw_text,
            charset=charset,
            coding=_int_or_none(params.get("coding")),
            dlr_mask=_int_or_none(params.get("dlr-mask")),
            dlr_url=text_param("dlr-url"),
            udh=params.get("udh", b""),
            username=text_param("username"),
            password=text_param("password"),
            params={key: value.decode("latin-1") for key, value in params.items()},
            received_at=time.monotonic(),
        )
        if operator.delay:
            time.sleep(operator.delay)
        status, body = operator.answer_status, operator.answer_body
        # Record before answering: once Kannel has its answer the test may look.
        operator._record(mt)
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        operator._answered(mt, accepted=_kannel_accepts(status, body))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Kannel's own logs say what was sent; stderr noise hides test output
