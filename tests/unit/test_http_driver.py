"""HttpDriver against a real provider: a small HTTP server the test scripts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.config import GatewayConfig, HttpProviderConfig
from gateway.drivers import make_driver
from gateway.drivers.base import OutgoingSms, PermanentError, TransientError
from gateway.drivers.console import ConsoleDriver
from gateway.drivers.http import HttpDriver, RetryLaterError, extract_id, parse_retry_after
from tests.servers.ports import free_port

SECRET = "s3cr3t&p@ss word"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


#: (status, headers, body, seconds to wait before answering)
Answer = tuple[int, dict[str, str], str, float]


@dataclass
class Provider:
    """Records every request and answers with ``answer(request)``."""

    answer: Callable[[Seen], Answer] = lambda _: (200, {}, '{"id": "p-1"}', 0.0)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            seen = Seen(
                method=self.command,
                path=parts.path,
                query={k: v[0] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length),
            )
            state.seen.append(seen)
            status, headers, body, delay = state.answer(seen)
            if delay:
                time.sleep(delay)
            data = body.encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout test)

        do_GET = do_POST = handle_any

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def gateway(url: str, **http: Any) -> GatewayConfig:
    return GatewayConfig(
        driver="http",
        url=url,
        username="acme",
        password=SECRET,
        timeout=http.pop("timeout", 2.0),
        http=HttpProviderConfig(**http),
    )


SMS = OutgoingSms(id=42, to="+33612345678", sender="ACME", text="Café ok", encoding="ucs2")


async def test_json_body_headers_and_nested_id(provider: Provider) -> None:
    provider.answer = lambda _: (201, {}, '{"data": {"messages": [{"id": 9876}]}}', 0)
    cfg = gateway(
        provider.url,
        fields={
            "dest": "{{ to_national }}",
            "from": "{{ sender }}",
            "body": "{{ text }}",
            "ref": "{{ message_id }}",
            "coding": "{{ coding }}",
            "enc": "{{ encoding }}",
            "callback": "{{ dlr_url }}",
            "user": "{{ username }}",
        },
        headers={"Authorization": "Bearer {{ password }}"},
        id_from="json:data.messages.0.id",
    )
    driver = HttpDriver(cfg, dlr_url_template="http://me/webhooks/dlr?id={id}&t=x")
    try:
        assert await driver.submit(SMS) == "9876"
    finally:
        await driver.aclose()
    [req] = provider.seen
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    assert req.json() == {
        "dest": "33612345678",
        "from": "ACME",
        "body": "Café ok",
        "ref": "42",
        "coding": "2",
        "enc": "ucs2",
        "callback": "http://me/webhooks/dlr?id=42&t=x",
        "user": "acme",
    }


async def test_form_body_and_regex_id(provider: Provider) -> None:
    provider.answer = lambda _: (200, {}, "OK: queued as ID-77 (1 credit)", 0)
    cfg = gateway(
        provider.url,
        body="form",
        fields={"to": "{{ to }}", "text": "{{ text }}", "pw": "{{ password }}"},
        id_from=r"regex:ID-(\d+)",
    )
    driver = HttpDriver(cfg, dlr_url_template=None)
    try:
        assert await driver.submit(SMS) == "77"
    finally:
        await driver.aclose()
    [req] = provider.seen
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.form() == {"to": "+33612345678", "text": "Café ok", "pw": SECRET}


async def test_query_string_get_with_gsm7_coding(provider: Provider) -> None:
    cfg = gateway(
        provider.url,
        method="GET",
        body="query",
        fields={"to": "{{ to }}", "coding": "{{ coding }}", "text": "{{ text }}"},
    )
    driver = HttpDriver(cfg, dlr_url_template=None)
    gsm = OutgoingSms(id=1, to="+33612345678", sender="36105", text="a b&c", encoding="gsm7")
    try:
        assert await driver.submit(gsm) == "p-1"
    finally:
        await driver.aclose()
    [req] = provider.seen
    assert req.method == "GET"
    assert req.body == b""
    assert req.query == {"to": "+33612345678", "coding": "0", "text": "a b&c"}


async def test_accepted_without_an_id_returns_none(provider: Provider) -> None:
    provider.answer = lambda _: (202, {}, '{"status": "queued"}', 0)
    driver = HttpDriver(gateway(provider.url), dlr_url_template=None)
    try:
        assert await driver.submit(SMS) is None
    finally:
        await driver.aclose()


async def test_400_is_permanent_with_the_reason_and_never_the_password(
    provider: Provider,
) -> None:
    # A provider that echoes the request, password included, in its error.
    def answer(req: Seen) -> Answer:
        body = {"error": f"Number(s) has/have been denied (request was {req.body.decode()})"}
        return 400, {"Content-Type": "application/json"}, json.dumps(body), 0

    provider.answer = answer
    cfg = gateway(provider.url, body="form", fields={"to": "{{ to }}", "pw": "{{ password }}"})
    driver = HttpDriver(cfg, dlr_url_template=None)
    try:
        with pytest.raises(PermanentError) as info:
            await driver.submit(SMS)
    finally:
        await driver.aclose()
    reason = str(info.value)
    assert reason.startswith(
        "gateway refused: HTTP 400 Bad Request: Number(s) has/have been denied"
    )
    assert SECRET not in reason
    assert "s3cr3t" not in reason
    assert "***" in reason


async def test_long_error_body_is_cut_short(provider: Provider) -> None:
    provider.answer = lambda _: (403, {}, "<html>" + "forbidden " * 200 + "</html>", 0)
    driver = HttpDriver(gateway(provider.url), dlr_url_template=None)
    try:
        with pytest.raises(PermanentError) as info:
            await driver.submit(SMS)
    finally:
        await driver.aclose()
    assert len(str(info.value)) < 260
    assert "HTTP 403" in str(info.value)


async def test_503_with_retry_after_is_transient(provider: Provider) -> None:
    provider.answer = lambda _: (503, {"Retry-After": "7"}, "maintenance", 0)
    driver = HttpDriver(gateway(provider.url), dlr_url_template=None)
    try:
        with pytest.raises(RetryLaterError) as info:
            await driver.submit(SMS)
    finally:
        await driver.aclose()
    assert isinstance(info.value, TransientError)
    assert info.value.retry_after == 7.0
    assert "HTTP 503" in str(info.value)
    assert "maintenance" in str(info.value)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 504])
async def test_throttling_and_server_errors_are_transient(provider: Provider, status: int) -> None:
    provider.answer = lambda _: (status, {}, "busy", 0)
    driver = HttpDriver(gateway(provider.url), dlr_url_template=None)
    try:
        with pytest.raises(TransientError) as info:
            await driver.submit(SMS)
    finally:
        await driver.aclose()
    assert getattr(info.value, "retry_after", None) is None


async def test_slow_answer_is_a_transient_timeout(provider: Provider) -> None:
    provider.answer = lambda _: (200, {}, '{"id": "late"}', 1.0)
    driver = HttpDriver(gateway(provider.url, timeout=0.2), dlr_url_template=None)
    started = time.monotonic()
    try:
        with pytest.raises(TransientError, match=r"within 0.2 s"):
            await driver.submit(SMS)
    finally:
        await driver.aclose()
    assert time.monotonic() - started < 0.9


async def test_nothing_listening_is_transient() -> None:
    cfg = gateway(f"http://127.0.0.1:{free_port()}/sms?password={SECRET}")
    driver = HttpDriver(cfg, dlr_url_template=None)
    try:
        with pytest.raises(TransientError, match="unreachable") as info:
            await driver.submit(SMS)
    finally:
        await driver.aclose()
    assert SECRET not in str(info.value)


def test_unknown_template_variable_fails_at_startup() -> None:
    cfg = gateway("http://127.0.0.1:1/", fields={"to": "{{ phone }}"})
    with pytest.raises(ValueError, match="phone"):
        HttpDriver(cfg, dlr_url_template=None)


def test_template_syntax_error_names_the_field() -> None:
    cfg = gateway("http://127.0.0.1:1/", fields={"to": "{{ to "})
    with pytest.raises(ValueError, match=r"http\.fields\.to"):
        HttpDriver(cfg, dlr_url_template=None)


def test_templates_are_sandboxed() -> None:
    cfg = gateway("http://127.0.0.1:1/", fields={"x": "{{ text.__class__.__mro__ }}"})
    with pytest.raises(ValueError):
        HttpDriver(cfg, dlr_url_template=None)


@pytest.mark.parametrize(
    ("id_from", "text", "expected"),
    [
        ("json:id", '{"id": 12}', "12"),
        ("json:a.b.0.c", '{"a": {"b": [{"c": "x1"}]}}', "x1"),
        ("json:a.-1", '{"a": [1, 2, 3]}', "3"),
        ("json:0.id", '[{"id": "first"}]', "first"),
        ("json:a.5", '{"a": [1]}', None),
        ("json:a.b", '{"a": 1}', None),
        ("json:id", "not json", None),
        ("json:id", '{"id": null}', None),
        ("regex:id=(\\w+)", "ok id=AB12 sent", "AB12"),
        ("regex:^\\d+$", "123", "123"),
        ("regex:id=(\\w+)", "nothing here", None),
    ],
)
def test_extract_id(id_from: str, text: str, expected: str | None) -> None:
    assert extract_id(id_from, text) == expected


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


async def test_make_driver_builds_console_and_http(tmp_path: Any) -> None:
    console = make_driver(
        GatewayConfig(driver="console", outbox_file=str(tmp_path / "s.jsonl")),
        dlr_url_template=None,
    )
    http = make_driver(gateway("http://127.0.0.1:1/"), dlr_url_template="http://x/{id}")
    assert isinstance(console, ConsoleDriver)
    assert isinstance(http, HttpDriver)
    await console.aclose()
    await http.aclose()
