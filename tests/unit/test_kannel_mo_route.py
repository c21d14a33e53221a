"""Kannel's MO webhook as served ahead of the framework: every answer and its body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from inbound import mo
from mail2sms.kannel_mo import MAX_BODY, PATH, KannelMoRoute

TOKEN = "s3cret-token"


class _Inner:
    """The application behind the route: answers 299 and remembers the path."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


class _Take:
    def __init__(self, fail: bool = False) -> None:
        self.taken: list[mo.Received] = []
        self.fail = fail

    async def __call__(self, received: mo.Received) -> None:
        if self.fail:
            raise RuntimeError("database is locked")
        self.taken.append(received)


def _client(take: _Take, inner: _Inner | None = None) -> httpx.AsyncClient:
    route = KannelMoRoute(inner or _Inner(), take, token=TOKEN, country="FR")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=route),
                             base_url="http://test")


MO = {"from": "0612345678", "to": "36105", "text": "HORAIRES", "id": "k-1",
      "ts": "2026-11-24 10:00:00"}


async def test_an_mo_is_taken_with_an_empty_answer() -> None:
    take = _Take()
    async with _client(take) as client:
        response = await client.get(PATH, params={"token": TOKEN, **MO})
    assert (response.status_code, response.content) == (200, b"")
    (received,) = take.taken
    assert (received.sms.sender, received.sms.receiver, received.sms.text,
            received.sms.gateway_id) == ("+33612345678", "36105", "HORAIRES", "k-1")


async def test_a_posted_form_and_a_bearer_token_are_read() -> None:
    take = _Take()
    async with _client(take) as client:
        response = await client.post(PATH, data={**MO, "text": "Réponse é"},
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert take.taken[0].sms.text == "Réponse é"


@pytest.mark.parametrize("auth", [{"params": {"token": "guess"}},
                                  {"headers": {"Authorization": "Bearer guess"}}, {}])
async def test_without_the_token_nothing_is_taken(auth: dict[str, Any]) -> None:
    take = _Take()
    async with _client(take) as client:
        params = {**MO, **auth.get("params", {})}
        response = await client.get(PATH, params=params, headers=auth.get("headers"))
    assert response.status_code == 401
    assert response.text == "missing or wrong webhook token"
    assert take.taken == []


async def test_unreadable_oversized_and_wrong_method_are_refused() -> None:
    take = _Take()
    async with _client(take) as client:
        missing = await client.get(PATH, params={"token": TOKEN, "text": "x"})
        huge = await client.post(f"{PATH}?token={TOKEN}",
                                 content=b"text=" + b"a" * (MAX_BODY + 1),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        put = await client.put(f"{PATH}?token={TOKEN}", content=b"")
    assert (missing.status_code, missing.content) == (400, b"")
    assert huge.status_code == 413
    assert (put.status_code, put.headers["allow"]) == (405, "GET, POST")
    assert take.taken == []


async def test_a_database_failure_asks_kannel_to_try_again() -> None:
    async with _client(_Take(fail=True)) as client:
        response = await client.get(PATH, params={"token": TOKEN, **MO})
    assert (response.status_code, response.content) == (503, b"")


async def test_every_other_path_goes_to_the_application() -> None:
    inner = _Inner()
    async with _client(_Take(), inner) as client:
        response = await client.get("/webhooks/kannel/dlr", params={"token": TOKEN})
        sub = await client.get(f"{PATH}/x", params={"token": TOKEN})
    assert (response.status_code, response.content, sub.status_code) == (299, b"inner", 299)
    assert inner.paths == ["/webhooks/kannel/dlr", f"{PATH}/x"]
