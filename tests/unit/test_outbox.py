"""The outbox against SQLite and real drivers: ConsoleDriver, and HttpDriver talking to a
small provider server the test scripts."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.config import GatewayConfig, HttpProviderConfig
from gateway.drivers.console import ConsoleDriver
from gateway.drivers.http import HttpDriver
from gateway.outbox import Outbox
from gateway.ratelimit import RateLimiter
from gateway.sweeper import sweep_late
from sms.phones import mask
from store import queries
from store.db import Database
from store.models import Message, MessageStatus, SendRequestRow, utcnow
from tests.servers.ports import free_port

# --- a provider that answers per message ------------------------------------------------

#: (status, headers, body, delay) for one call, given the message id and its try number.
Answer = tuple[int, dict[str, str], str, float]


@dataclass
class Provider:
    answer: Callable[[int, int], Answer] = lambda mid, n: (
        200,
        {},
        json.dumps({"id": f"p{mid}"}),
        0,
    )
    calls: list[tuple[int, float, int]] = field(default_factory=list)  # (id, time, status)
    active: int = 0
    max_active: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> Counter[int]:
        return Counter(mid for mid, _, status in self.calls if status == 200)

    def times(self, mid: int) -> list[float]:
        return [t for m, t, _ in self.calls if m == mid]


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            mid = int(body["ref"])
            with state.lock:
                state.active += 1
                state.max_active = max(state.max_active, state.active)
                tries = sum(1 for m, _, _ in state.calls if m == mid) + 1
            status, headers, text, delay = state.answer(mid, tries)
            time.sleep(delay)
            with state.lock:
                state.calls.append((mid, time.monotonic(), status))
                state.active -= 1
            data = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
async def http_driver(provider: Provider) -> AsyncIterator[HttpDriver]:
    cfg = GatewayConfig(
        driver="http",
        url=f"http://127.0.0.1:{provider.port}/sms",
        password="pw",
        timeout=3.0,
        http=HttpProviderConfig(fields={"to": "{{ to }}", "ref": "{{ message_id }}"}),
    )
    driver = HttpDriver(cfg, dlr_url_template=None)
    yield driver
    await driver.aclose()


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[ConsoleDriver]:
    driver = ConsoleDriver(str(tmp_path / "sent.jsonl"))
    yield driver
    await driver.aclose()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield database
    database.close()


async def queue(db: Database, count: int, **fields: Any) -> list[int]:
    def add(session: queries.Session) -> list[int]:
        messages = [
            Message(to=f"+3361234{i:04d}", text=f"message {i}", **fields) for i in range(count)
        ]
        queries.add_request(session, SendRequestRow(user="alice@example.com"), messages)
        return [m.id for m in messages if m.id is not None]

    return await db.run(add)


async def rows(db: Database) -> dict[int, Message]:
    def read(session: queries.Session) -> dict[int, Message]:
        return {m.id: m for m in session.exec(queries.select(Message)) if m.id is not None}

    return await db.run(read)


def sent_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


# --- tests ---------------------------------------------------------------------------


async def test_submits_due_messages_and_records_gateway_ids(
    db: Database, console: ConsoleDriver
) -> None:
    ids = await queue(db, 50, sender="ACME")
    outbox = Outbox(db, console, rate_per_second=10_000)
    assert await outbox.drain(5) == 50
    found = await rows(db)
    assert {m.status for m in found.values()} == {MessageStatus.SUBMITTED}
    assert all(found[i].gateway_id == f"console-{i}" for i in ids)
    assert all(found[i].submitted_at is not None and found[i].lease_owner is None for i in ids)
    assert sorted(sent_ids(console.path)) == ids


async def test_rate_limit_is_respected(db: Database, console: ConsoleDriver) -> None:
    await queue(db, 20)
    outbox = Outbox(db, console, rate_per_second=10)
    started = time.monotonic()
    assert await outbox.drain(10) == 20
    assert time.monotonic() - started >= 1.85


async def test_concurrency_bound(db: Database, provider: Provider, http_driver: HttpDriver) -> None:
    provider.answer = lambda mid, n: (200, {}, "{}", 0.08)
    await queue(db, 15)
    outbox = Outbox(db, http_driver, rate_per_second=1000, concurrency=3)
    assert await outbox.drain(5) == 15
    assert provider.max_active == 3


async def test_transient_failures_are_retried_with_backoff(
    db: Database, provider: Provider, http_driver: HttpDriver
) -> None:
    provider.answer = lambda mid, n: (503, {}, "busy", 0) if n <= 2 else (200, {}, "{}", 0)
    ids = await queue(db, 5)
    outbox = Outbox(db, http_driver, rate_per_second=1000, backoff_base=0.05)
    assert await outbox.drain(5) == 5
    found = await rows(db)
    assert all(found[i].status == MessageStatus.SUBMITTED for i in ids)
    assert all(found[i].attempts == 3 and found[i].reason is None for i in ids)
    for i in ids:
        first, second, third = provider.times(i)
        # Backoff with jitter: half to all of base * 2**(attempts-1).
        assert second - first >= 0.02
        assert third - second >= 0.045


async def test_retry_after_is_honoured(
    db: Database, provider: Provider, http_driver: HttpDriver
) -> None:
    provider.answer = lambda mid, n: (
        (429, {"Retry-After": "1"}, "slow down", 0) if n == 1 else (200, {}, "{}", 0)
    )
    [mid] = await queue(db, 1)
    outbox = Outbox(db, http_driver, rate_per_second=1000, backoff_base=0.01)
    assert await outbox.drain(5) == 1
    first, second = provider.times(mid)
    assert second - first >= 0.95


async def test_permanent_failure_keeps_the_reason_and_notifies(
    db: Database, provider: Provider, http_driver: HttpDriver
) -> None:
    denied = '{"error": "Number(s) has/have been denied"}'
    provider.answer = lambda mid, n: (400, {"Content-Type": "application/json"}, denied, 0)
    [mid] = await queue(db, 1)
    finals: list[Message] = []

    async def on_final(message: Message) -> None:
        finals.append(message)

    outbox = Outbox(db, http_driver, rate_per_second=1000, on_final=on_final)
    assert await outbox.drain(5) == 0
    message = (await rows(db))[mid]
    assert message.status == MessageStatus.FAILED
    assert message.reason == (
        "gateway refused: HTTP 400 Bad Request: Number(s) has/have been denied"
    )
    assert message.final_at is not None
    assert len(provider.calls) == 1
    assert [(m.id, m.status, m.reason) for m in finals] == [
        (mid, MessageStatus.FAILED, message.reason)
    ]


async def test_gives_up_after_max_attempts(
    db: Database, provider: Provider, http_driver: HttpDriver
) -> None:
    provider.answer = lambda mid, n: (502, {}, "Kannel unreachable", 0)
    [mid] = await queue(db, 1)
    outbox = Outbox(db, http_driver, rate_per_second=1000, max_attempts=3, backoff_base=0.01)
    assert await outbox.drain(5) == 0
    message = (await rows(db))[mid]
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 3
    assert message.reason == "gave up after 3 attempts: HTTP 502 Bad Gateway: Kannel unreachable"
    assert len(provider.calls) == 3


async def test_crashed_claims_become_uncertain_and_are_never_resent(
    db: Database, console: ConsoleDriver
) -> None:
    ids = await queue(db, 8)
    # A dispatcher claims five rows and dies without releasing them.
    lease = timedelta(seconds=0.2)
    claimed = await db.run(lambda s: queries.claim_due(s, "dead:1", 5, lease))
    dead = [m.id for m in claimed]
    await asyncio.sleep(0.3)
    outbox = Outbox(db, console, rate_per_second=1000)
    assert await outbox.drain(5) == 3
    found = await rows(db)
    assert all(found[i].status == MessageStatus.UNCERTAIN for i in dead)
    assert sorted(sent_ids(console.path)) == [i for i in ids if i not in dead]
    # Later runs leave them alone too.
    assert await Outbox(db, console, rate_per_second=1000).drain(1) == 0
    assert len(sent_ids(console.path)) == 3


async def test_live_claims_of_another_dispatcher_are_left_alone(
    db: Database, console: ConsoleDriver
) -> None:
    await queue(db, 4)
    await db.run(lambda s: queries.claim_due(s, "other:1", 2, timedelta(minutes=5)))
    assert await Outbox(db, console, rate_per_second=1000).drain(2) == 2
    counts = await db.run(queries.status_counts)
    assert counts == {MessageStatus.SENDING: 2, MessageStatus.SUBMITTED: 2}


async def test_clean_stop_releases_unstarted_claims(
    db: Database, provider: Provider, http_driver: HttpDriver
) -> None:
    provider.answer = lambda mid, n: (200, {}, "{}", 0.3)
    ids = await queue(db, 10)
    outbox = Outbox(db, http_driver, rate_per_second=1000, concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    await until(lambda: provider.active >= 2)
    stop.set()
    await asyncio.wait_for(task, 3)
    found = await rows(db)
    submitted = [i for i in ids if found[i].status == MessageStatus.SUBMITTED]
    assert len(submitted) == 2  # the calls in flight finished and were recorded
    rest = [found[i] for i in ids if i not in submitted]
    assert all(m.status == MessageStatus.QUEUED for m in rest)
    assert all(m.attempts == 0 and m.lease_owner is None for m in rest)


async def test_stop_does_not_wait_for_a_slow_rate(db: Database, console: ConsoleDriver) -> None:
    await queue(db, 5)
    outbox = Outbox(db, console, rate_per_second=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 2)
    assert time.monotonic() - started < 0.5
    counts = await db.run(queries.status_counts)
    assert counts == {MessageStatus.SUBMITTED: 1, MessageStatus.QUEUED: 4}


async def test_each_message_submitted_exactly_once_across_two_dispatchers(
    db: Database, provider: Provider, http_driver: HttpDriver
) -> None:
    def answer(mid: int, n: int) -> Answer:
        if mid % 7 == 0 and n == 1:
            return 503, {}, "busy", 0
        return 200, {}, json.dumps({"id": f"p{mid}"}), 0

    provider.answer = answer
    ids = await queue(db, 200)
    outboxes = [
        Outbox(db, http_driver, rate_per_second=5000, concurrency=3, backoff_base=0.02)
        for _ in range(2)
    ]
    counts = await asyncio.gather(*(o.drain(8) for o in outboxes))
    assert sum(counts) == 200
    assert provider.accepted == Counter(dict.fromkeys(ids, 1))
    found = await rows(db)
    assert all(found[i].gateway_id == f"p{i}" for i in ids)


async def test_wake_dispatches_without_waiting_for_the_poll(
    db: Database, console: ConsoleDriver
) -> None:
    outbox = Outbox(db, console, rate_per_second=1000)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    await asyncio.sleep(0.1)  # the dispatcher is now idle, polling every second
    [mid] = await queue(db, 1)
    queued_at = time.monotonic()
    outbox.wake()
    await until(lambda: bool(sent_ids(console.path)))
    assert time.monotonic() - queued_at < 0.5
    stop.set()
    await asyncio.wait_for(task, 2)
    assert (await rows(db))[mid].status == MessageStatus.SUBMITTED


async def test_deferred_message_waits_for_not_before(db: Database, console: ConsoleDriver) -> None:
    not_before = utcnow() + timedelta(seconds=0.4)
    [mid] = await queue(db, 1, status=MessageStatus.DEFERRED, not_before=not_before)
    later = await queue(
        db, 1, status=MessageStatus.DEFERRED, not_before=utcnow() + timedelta(hours=1)
    )
    outbox = Outbox(db, console, rate_per_second=1000)
    started = time.monotonic()
    assert await outbox.drain(3) == 1
    assert 0.3 <= time.monotonic() - started < 2
    found = await rows(db)
    assert found[mid].status == MessageStatus.SUBMITTED
    assert found[later[0]].status == MessageStatus.DEFERRED


async def test_throughput_with_the_console_driver(db: Database, console: ConsoleDriver) -> None:
    await queue(db, 2000)
    outbox = Outbox(db, console, rate_per_second=100_000)
    started = time.monotonic()
    assert await outbox.drain(20) == 2000
    assert time.monotonic() - started < 5  # about 0.2 s on a laptop
    assert len(set(sent_ids(console.path))) == 2000


async def test_sweep_late_marks_old_submissions(db: Database) -> None:
    old, recent = await queue(db, 2, status=MessageStatus.SUBMITTED)

    def age(session: queries.Session) -> None:
        for mid, hours in ((old, 49), (recent, 47)):
            message = session.get(Message, mid)
            assert message is not None
            message.submitted_at = utcnow() - timedelta(hours=hours)
            session.add(message)

    await db.run(age)
    assert await sweep_late(db) == 1
    found = await rows(db)
    assert found[old].status == MessageStatus.LATE
    assert found[recent].status == MessageStatus.SUBMITTED


def test_backoff_grows_exponentially_with_jitter_and_a_cap(db: Database) -> None:
    outbox = Outbox(db, ConsoleDriver("/dev/null"), rate_per_second=1, backoff_max=600)
    for attempts, ceiling in ((1, 2), (2, 4), (3, 8), (5, 32), (12, 600)):
        delays = [outbox.backoff_delay(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_rate_limiter_spaces_tokens() -> None:
    limiter = RateLimiter(10)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits[0] == 0
    assert waits[4] == pytest.approx(0.4, abs=0.01)


async def test_logs_mask_phone_numbers(
    db: Database, provider: Provider, http_driver: HttpDriver, caplog: pytest.LogCaptureFixture
) -> None:
    provider.answer = lambda mid, n: (400, {}, "denied", 0)
    await queue(db, 1)
    with caplog.at_level(logging.DEBUG, logger="gateway.outbox"):
        await Outbox(db, http_driver, rate_per_second=1000).drain(5)
    assert "failed: gateway refused" in caplog.text
    assert "+33612340000" not in caplog.text
    assert mask("+33612340000") in caplog.text
