"""Kannel's MO and DLR webhooks as served ahead of the framework: every answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from gateway.config import UNASSIGNED_ERRORS
from gateway.dlr import DlrRecorder
from inbound import mo
from mail2sms.kannel_hooks import (
    DLR_PATH,
    MAX_BODY,
    MO_PATH,
    KannelHooks,
    dlr_handler,
    mo_handler,
)
from store import queries
from store.db import Database
from store.models import DeliveryReport, Message, MessageStatus, SendRequestRow

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
    route = KannelHooks(inner or _Inner(), token=TOKEN,
                        handlers={MO_PATH: mo_handler(take, country="FR")})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=route),
                             base_url="http://test")


MO = {"from": "0612345678", "to": "36105", "text": "HORAIRES", "id": "k-1",
      "ts": "2026-11-24 10:00:00"}


async def test_an_mo_is_taken_with_an_empty_answer() -> None:
    take = _Take()
    async with _client(take) as client:
        response = await client.get(MO_PATH, params={"token": TOKEN, **MO})
    assert (response.status_code, response.content) == (200, b"")
    (received,) = take.taken
    assert (received.sms.sender, received.sms.receiver, received.sms.text,
            received.sms.gateway_id) == ("+33612345678", "36105", "HORAIRES", "k-1")


async def test_a_posted_form_and_a_bearer_token_are_read() -> None:
    take = _Take()
    async with _client(take) as client:
        response = await client.post(MO_PATH, data={**MO, "text": "Réponse é"},
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert take.taken[0].sms.text == "Réponse é"


@pytest.mark.parametrize("auth", [{"params": {"token": "guess"}},
                                  {"headers": {"Authorization": "Bearer guess"}}, {}])
async def test_without_the_token_nothing_is_taken(auth: dict[str, Any]) -> None:
    take = _Take()
    async with _client(take) as client:
        params = {**MO, **auth.get("params", {})}
        response = await client.get(MO_PATH, params=params, headers=auth.get("headers"))
    assert response.status_code == 401
    assert response.text == "missing or wrong webhook token"
    assert take.taken == []


async def test_unreadable_oversized_and_wrong_method_are_refused() -> None:
    take = _Take()
    async with _client(take) as client:
        missing = await client.get(MO_PATH, params={"token": TOKEN, "text": "x"})
        huge = await client.post(f"{MO_PATH}?token={TOKEN}",
                                 content=b"text=" + b"a" * (MAX_BODY + 1),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        put = await client.put(f"{MO_PATH}?token={TOKEN}", content=b"")
    assert (missing.status_code, missing.content) == (400, b"")
    assert huge.status_code == 413
    assert (put.status_code, put.headers["allow"]) == (405, "GET, POST")
    assert take.taken == []


async def test_a_database_failure_asks_kannel_to_try_again() -> None:
    async with _client(_Take(fail=True)) as client:
        response = await client.get(MO_PATH, params={"token": TOKEN, **MO})
    assert (response.status_code, response.content) == (503, b"")


async def test_every_other_path_goes_to_the_application() -> None:
    inner = _Inner()
    async with _client(_Take(), inner) as client:
        response = await client.get("/webhooks/kannel/dlr", params={"token": TOKEN})
        sub = await client.get(f"{MO_PATH}/x", params={"token": TOKEN})
    assert (response.status_code, response.content, sub.status_code) == (299, b"inner", 299)
    assert inner.paths == ["/webhooks/kannel/dlr", f"{MO_PATH}/x"]


# --- delivery reports, against a real SQLite database ----------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'dlr.db'}")
    yield database
    database.close()


def _dlr_client(db: Database) -> httpx.AsyncClient:
    route = KannelHooks(_Inner(), token=TOKEN, handlers={
        DLR_PATH: dlr_handler(DlrRecorder(db), unassigned_errors=UNASSIGNED_ERRORS)})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=route),
                             base_url="http://test")


def _submitted(db: Database, count: int) -> list[int]:
    def add(session: Session) -> list[int]:
        messages = [Message(to=f"+336100{i:05d}", text="hi", status=MessageStatus.SUBMITTED)
                    for i in range(count)]
        queries.add_request(session, SendRequestRow(user="alice@example.com"), messages)
        return [m.id or 0 for m in messages]

    return db.run_sync(add)


def _statuses(db: Database) -> dict[int, str]:
    return db.run_sync(lambda s: {m.id or 0: m.status for m in s.exec(select(Message))})


async def test_reports_are_stored_and_answered(db: Database) -> None:
    delivered, failed = _submitted(db, 2)
    async with _dlr_client(db) as client:
        ok = await client.get(DLR_PATH, params={"token": TOKEN, "id": delivered,
                                                "status": 1, "answer": "stat:DELIVRD"})
        nack = await client.post(DLR_PATH, headers={"Authorization": f"Bearer {TOKEN}"},
                                 data={"id": failed, "status": 16,
                                       "answer": "NACK/0x0000000b/Invalid Destination"})
        unknown = await client.get(DLR_PATH, params={"token": TOKEN, "id": 999, "status": 1})
    assert (ok.status_code, ok.text) == (200, "OK")
    assert nack.status_code == 200
    assert (unknown.status_code, unknown.text) == (202, "unknown message id (report kept)")
    assert _statuses(db) == {delivered: "delivered", failed: "failed"}
    kept = db.run_sync(lambda s: [r.message_id for r in s.exec(select(DeliveryReport))])
    assert sorted(kept) == sorted([delivered, failed, 999])


async def test_bad_reports_are_refused_with_what_is_expected(db: Database) -> None:
    (mid,) = _submitted(db, 1)
    async with _dlr_client(db) as client:
        no_id = await client.get(DLR_PATH, params={"token": TOKEN, "status": 1})
        bad_code = await client.get(DLR_PATH, params={"token": TOKEN, "id": mid, "status": 3})
        spoofed = await client.get(DLR_PATH, params={"token": "x", "id": mid, "status": 2})
    assert (no_id.status_code, no_id.text) == (400, "expected id=<message id>&status=<Kannel %d>")
    assert bad_code.status_code == 400 and "3" in bad_code.text
    assert spoofed.status_code == 401
    assert _statuses(db) == {mid: "submitted"}


async def test_reports_arriving_together_share_transactions(db: Database) -> None:
    ids = _submitted(db, 60)
    commits: list[object] = []
    event.listen(db.engine, "commit", lambda conn: commits.append(conn))
    async with _dlr_client(db) as client:
        answers = await asyncio.gather(*(
            client.get(DLR_PATH, params={"token": TOKEN, "id": mid, "status": 1})
            for mid in ids))
    assert [a.status_code for a in answers] == [200] * 60
    assert set(_statuses(db).values()) == {"delivered"}
    assert len(commits) < 10  # not one per report
