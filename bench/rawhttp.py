"""A lean HTTP/1.1 load client: prepared GET requests over keep-alive connections.

Gateways call webhooks from C (Kannel's smsbox spends a few microseconds a request);
a Python client such as httpx spends over a millisecond of CPU on each, as much as the
server it measures, and on a two-core machine takes the server's second core. This one
writes bytes prepared before the clock starts and reads back the status line and
``Content-Length`` only, so nearly all the CPU goes to what is measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit


def get_request(url: str, params: dict[str, str]) -> bytes:
    """A complete ``GET`` request for ``url`` with ``params`` in its query string."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return (f"GET {parts.path or '/'}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "User-Agent: mail2sms-bench\r\n\r\n").encode("latin-1")


class HttpError(RuntimeError):
    """An answer outside 2xx: which request, the status and the start of the body."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server closes the connection after it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, lines[0].startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise HttpError("chunked answers are not read by this client")
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def run_requests(host: str, port: int, requests: Sequence[bytes], concurrency: int,
                       timeout: float = 10.0) -> tuple[float, list[float]]:
    """Every request once, over ``concurrency`` connections, each request waiting for
    the answer to the one before on its connection (as a gateway does). Returns the
    seconds from the first request to the last answer and each request's latency.
    Raises HttpError on the first answer outside 2xx."""
    latencies: list[float] = []
    todo = iter(range(len(requests)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in todo:
                start = time.perf_counter()
                writer.write(requests[i])
                status, body, close = await asyncio.wait_for(_read_answer(reader), timeout)
                latencies.append(time.perf_counter() - start)
                if not 200 <= status < 300:
                    raise HttpError(f"request {i}: HTTP {status} {body[:200]!r}")
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies
