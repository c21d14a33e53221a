"""MO (received SMS) throughput: our webhook driven directly, the same server behind
Kannel, and Kannel alone delivering MOs to a trivial receiver, in the same run.

Every client (the webhook's HTTP clients, the operator side injecting MOs into Kannel)
and the trivial receiver run in processes of their own, so none shares an interpreter
with what is measured. Standalone: ``python -m bench.mo [N] [CONCURRENCY]``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.rawhttp import get_request, run_requests
from bench.stats import latency_line, percentile
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator
from tests.servers.ports import free_port

TOKEN = "test-token"
SHORTCODE = "36105"
RULES = 200
_SPAWN = multiprocessing.get_context("spawn")
_START_TIMEOUT = 30.0

# Each measure uses its own numbers, one per MO: no per-number daily maximum is reached
# and no MO is taken for a retry of another (warm-ups: the million below).
_WEBHOOK, _KANNEL, _ALONE = 11_000_000, 21_000_000, 31_000_000
#: Operator connections into Kannel: the 20 of the other measures, then 5, with which
#: Kannel's own HTTP intake is about twice as fast (so our webhook shows as the limit).
INJECTORS = (20, 5)


def write_rules(path: Path, count: int = RULES) -> Path:
    """A rules file of ``count`` keyword rules KW001.., each with a templated reply."""
    lines = ["keywords:"]
    for i in range(1, count + 1):
        lines += [f"  - keyword: KW{i:03d}",
                  f"    reply: \"Bonjour {{{{ contact.first_name | default('') }}}}, "
                  f"infos KW{i:03d}\""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _number(i: int) -> str:
    return f"+336{i:08d}"


def _text(i: int) -> str:
    return f"KW{i % RULES + 1:03d} merci pour les infos"


# --- processes of their own: the clients and the trivial receiver ------------------


def client_main(url: str, requests: list[bytes], concurrency: int, ready: Any, go: Any,
                 results: Any) -> None:
    """Send the prepared requests once told to go; put (seconds, latencies) or an error."""
    parts = urlsplit(url)
    ready.set()
    if not go.wait(_START_TIMEOUT):
        results.put("never told to start")
        return
    try:
        results.put(asyncio.run(run_requests(parts.hostname or "127.0.0.1", parts.port or 80,
                                             requests, concurrency)))
    except Exception as exc:  # reported by the parent, which raises it
        results.put(f"{type(exc).__name__}: {exc}")


def _webhook_client(url: str, first: int, n: int, concurrency: int, ready: Any, go: Any,
                    results: Any) -> None:
    """Kannel's get-url calls, as Kannel makes them, straight to our webhook."""
    ts = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    requests = [get_request(url, {"token": TOKEN, "from": _number(first + i),
                                  "to": SHORTCODE, "text": _text(i), "ts": ts,
                                  "id": f"bench-{first + i}"})
                for i in range(n)]
    client_main(url, requests, concurrency, ready, go, results)


def _operator_client(url: str, username: str, password: str, first: int, n: int,
                     concurrency: int, ready: Any, go: Any, results: Any) -> None:
    """The operator delivering MOs to bearerbox's smsc port (as ``inject_mo`` does)."""
    requests = [get_request(url, {"username": username, "password": password,
                                  "from": _number(first + i), "to": SHORTCODE,
                                  "text": _text(i), "charset": "UTF-8"})
                for i in range(n)]
    client_main(url, requests, concurrency, ready, go, results)


class ClientProcess:
    """A client process: started, told to go, its result read; always stopped."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self.ready, self.go, self.results = _SPAWN.Event(), _SPAWN.Event(), _SPAWN.Queue()
        self.process = _SPAWN.Process(target=target, daemon=True,
                                      args=(*args, self.ready, self.go, self.results))

    async def __aenter__(self) -> ClientProcess:
        self.process.start()
        # the clock starts once the process is up, not while Python starts
        if not await asyncio.to_thread(_started, self.process, self.ready):
            _stop(self.process, 0)
            raise RuntimeError(f"the client process did not start "
                               f"(exit code {self.process.exitcode})")
        return self

    async def result(self, timeout: float) -> tuple[float, list[float]]:
        try:
            result = await asyncio.to_thread(self.results.get, True, timeout)
        except queue.Empty:
            raise TimeoutError(f"the client did not finish within {timeout:.0f} s") from None
        if isinstance(result, str):
            raise RuntimeError(f"the client failed: {result}")
        return result  # type: ignore[no-any-return]

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(_stop, self.process)


def _started(process: multiprocessing.process.BaseProcess, ready: Any) -> bool:
    """Wait (bounded) for ``ready``; False at once should the process die first."""
    deadline = time.monotonic() + _START_TIMEOUT
    while not ready.wait(0.05):
        if not process.is_alive() or time.monotonic() > deadline:
            return False
    return True


def _stop(process: multiprocessing.process.BaseProcess, grace: float = 5.0) -> None:
    process.join(grace)
    for end in (process.terminate, process.kill):
        if not process.is_alive():
            return
        end()
        process.join(5)


_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"


def _receiver(port: int, counter: Any, ready: Any) -> None:
    """The trivial MO receiver: answers every request 200 with an empty body; counts."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                lines = head.split(b"\r\n")
                length = next((int(line[15:]) for line in lines
                               if line.startswith(b"content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                counter.value += 1
                writer.write(_OK)
                await writer.drain()
                if b"connection: close" in head or lines[0].endswith(b"http/1.0"):
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class _Receiver:
    """The trivial receiver in its own process, on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.counter = _SPAWN.Value("q", 0, lock=False)
        self.ready = _SPAWN.Event()
        self.process = _SPAWN.Process(target=_receiver, daemon=True,
                                      args=(self.port, self.counter, self.ready))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mo"

    def count(self) -> int:
        return int(self.counter.value)

    def __enter__(self) -> _Receiver:
        self.process.start()
        if not _started(self.process, self.ready):
            _stop(self.process, 0)
            raise RuntimeError("the trivial MO receiver did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        _stop(self.process, 0)


# --- counting what the server stored ------------------------------------------------


class _Counts:
    """Read-only counts in the server's SQLite database (WAL: readers never block it)."""

    def __init__(self, server: Mail2SmsServer) -> None:
        path = server.db_url.removeprefix("sqlite:///")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)

    def _one(self, sql: str) -> int:
        return int(self.db.execute(sql).fetchone()[0])

    def inbound(self) -> int:
        return self._one("SELECT count(*) FROM inbound")

    def summary(self) -> dict[str, int]:
        return {
            "inbound": self.inbound(),
            "keyword": self._one("SELECT count(*) FROM inbound WHERE handled_by = 'keyword'"),
            # replies are the messages without a send request (no email asked for them)
            "replies": self._one("SELECT count(*) FROM messages WHERE request_id IS NULL"),
        }

    def close(self) -> None:
        self.db.close()


async def _until(done: Callable[[], bool], timeout: float, what: str,
                 every: float = 0.01) -> float:
    """Poll ``done()`` until true (bounded); the monotonic time it was first seen true."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        await asyncio.sleep(every)
    return time.monotonic()


# --- the three measures ---------------------------------------------------------------


async def mo_webhook(server: Mail2SmsServer, n: int, concurrency: int,
                     first: int = _WEBHOOK) -> dict[str, Any]:
    """N MOs straight to the webhook; MO/s and latency as the HTTP client sees them,
    and what the server stored meanwhile."""
    counts = _Counts(server)
    try:
        before = counts.summary()
        url = f"{server.http_url}/webhooks/kannel/mo"
        async with ClientProcess(_webhook_client, url, first, n, concurrency) as client:
            client.go.set()
            seconds, latencies = await client.result(30.0 + n / 50)
        after = counts.summary()
    finally:
        counts.close()
    stored = {key: after[key] - before[key] for key in after}
    return {"n": n, "seconds": seconds, "per_second": n / seconds,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "latency": latency_line(latencies), "stored": stored}


async def _inject(stack: KannelStack, n: int, concurrency: int, first: int,
                  count: Callable[[], int]) -> dict[str, Any]:
    """N MOs delivered to bearerbox by the operator side; time from the go until
    ``count()`` (what the far end has taken) has grown by N."""
    before = count()
    async with ClientProcess(_operator_client, stack.smsc_url, stack.smsc_username,
                       stack.smsc_password, first, n, concurrency) as client:
        start = time.monotonic()
        client.go.set()
        end = await _until(lambda: count() >= before + n, 30.0 + n / 20,
                           f"{n} MOs through Kannel")
        injected, _ = await client.result(30.0)
    seconds = end - start
    return {"n": n, "seconds": seconds, "per_second": n / seconds,
            "inject_seconds": injected}


async def _injections(stack: KannelStack, n: int, concurrencies: tuple[int, ...],
                      first: int, count: Callable[[], int],
                      warmup: int) -> dict[int, dict[str, Any]]:
    """A warm-up, then N MOs at each number of operator connections, in turn."""
    await _inject(stack, warmup, concurrencies[0], first - 1_000_000, count)
    return {c: await _inject(stack, n, c, first + k * 1_000_000, count)
            for k, c in enumerate(concurrencies)}


async def mo_through_kannel(server: Mail2SmsServer, n: int, concurrencies: tuple[int, ...],
                            warmup: int = 200) -> dict[int, dict[str, Any]]:
    """The server as Kannel's get-url; N MOs until the server has stored N Inbound rows."""
    counts = _Counts(server)
    mo_url = f"{server.http_url}/webhooks/kannel/mo?token={TOKEN}"
    try:
        with FakeOperator() as operator, \
                KannelStack(operator, mo_url=mo_url, log_level=1) as stack:
            return await _injections(stack, n, concurrencies, _KANNEL, counts.inbound, warmup)
    finally:
        counts.close()


async def kannel_alone(n: int, concurrencies: tuple[int, ...],
                       warmup: int = 200) -> dict[int, dict[str, Any]]:
    """The same injections into a Kannel whose get-url is the trivial receiver."""
    with _Receiver() as receiver, FakeOperator() as operator, \
            KannelStack(operator, mo_url=receiver.url, log_level=1) as stack:
        return await _injections(stack, n, concurrencies, _ALONE, receiver.count, warmup)


def mo_server(tmp: Path) -> Mail2SmsServer:
    """``mail2sms serve`` with 200 keyword rules and the console gateway."""
    rules = write_rules(tmp / "rules.yaml")
    return Mail2SmsServer(tmp, base_config(tmp, log_level="WARNING", rules=str(rules)))


async def bench_mo(n: int, concurrency: int, warmup: int = 200) -> None:
    """(d) the webhook driven directly, (e) through Kannel beside Kannel alone."""
    injectors = (concurrency, *(c for c in INJECTORS if c != concurrency))
    with tempfile.TemporaryDirectory(prefix="bench-mo-") as tmp:
        with mo_server(Path(tmp)) as server:
            await mo_webhook(server, warmup, concurrency, _WEBHOOK - 1_000_000)
            direct = await mo_webhook(server, n, concurrency)
            stored = direct["stored"]
            print(f"(d) MO through the webhook, {RULES} rules, a reply queued for each, "
                  f"{n} MOs, {concurrency} clients: {direct['per_second']:.0f} MO/s; "
                  f"latency per MO: {direct['latency']}")
            expected = stored["inbound"] == stored["replies"] == stored["keyword"] == n
            print(f"    stored: {stored['inbound']} Inbound rows ({stored['keyword']} "
                  f"handled by a keyword), {stored['replies']} replies queued"
                  + ("" if expected else f": MISMATCH, expected {n} of each"))
            ours = await mo_through_kannel(server, n, injectors, warmup)
        alone = await kannel_alone(n, injectors, warmup)
    for k, c in enumerate(injectors):
        ratio = ours[c]["per_second"] / alone[c]["per_second"]
        head = (f"(e) MO through Kannel to our webhook, {n} MOs, {c} operator connections:"
                if k == 0 else f"    with {c} operator connections:")
        print(f"{head} {ours[c]['per_second']:.0f} MO/s; Kannel alone to a trivial "
              f"receiver {alone[c]['per_second']:.0f} MO/s: ratio {ratio:.2f}")


if __name__ == "__main__":
    argv = [int(a) for a in sys.argv[1:3]]
    asyncio.run(bench_mo(*(argv + [10000, 20][len(argv):])))
