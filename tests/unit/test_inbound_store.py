"""The inbound queries in store.inbound, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from store import contacts
from store import inbound as store
from store.db import Database
from store.models import Inbound, OptOutEvent, SurveySession

PHONE = "+33612345678"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    yield database
    database.close()


def insert(session: Session, key: str) -> int | None:
    return store.insert_inbound(session, dedup_key=key, sender=PHONE, receiver="36105",
                                text="x")


def test_insert_is_deduplicated_by_key(db: Database) -> None:
    first = db.run_sync(lambda s: insert(s, "id:1"))
    assert first is not None
    assert db.run_sync(lambda s: insert(s, "id:1")) is None
    assert db.run_sync(lambda s: insert(s, "id:2")) == first + 1


def test_insert_is_undone_with_its_transaction(db: Database) -> None:
    def fails(session: Session) -> None:
        insert(session, "id:1")
        raise RuntimeError("later step failed")

    with pytest.raises(RuntimeError):
        db.run_sync(fails)
    assert db.run_sync(lambda s: list(s.exec(select(Inbound)))) == []


def test_decisions_recorded(db: Database) -> None:
    inbound_id = db.run_sync(lambda s: insert(s, "id:1"))
    assert inbound_id is not None
    db.run_sync(lambda s: store.record_decisions(
        s, inbound_id, status="handled", handled_by="help",
        decisions=[{"step": "help", "decision": "help", "reason": "é"}], rule=None))
    row = db.run_sync(lambda s: store.get_inbound(s, inbound_id))
    assert row is not None and row.handled_by == "help" and "é" in row.decisions


def test_one_open_session_per_number(db: Database) -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    first = db.run_sync(lambda s: store.start_session(s, PHONE, "a", "q1", now))
    second = db.run_sync(lambda s: store.start_session(s, PHONE, "b", "q1", now))
    other = db.run_sync(lambda s: store.start_session(s, "+33611111111", "a", "q1", now))
    rows = {r.id: r for r in db.run_sync(lambda s: list(s.exec(select(SurveySession))))}
    assert rows[first].status == "replaced" and rows[first].closed_at is not None
    assert rows[second].status == "open" and rows[other].status == "open"
    found = db.run_sync(lambda s: store.open_session(s, PHONE))
    assert found is not None and found.id == second


def test_answers_latest_wins(db: Database) -> None:
    sid = db.run_sync(lambda s: store.start_session(s, PHONE, "a", "q1"))
    for value in ("1", "2"):
        db.run_sync(lambda s, v=value: store.add_answer(s, sid, survey="a", step="q1",
                                                         text=v, value=v))
    assert db.run_sync(lambda s: store.answers_of(s, sid)) == {"q1": "2"}


def test_contact_fields_for_an_unknown_number(db: Database) -> None:
    fields = db.run_sync(lambda s: contacts.contact_fields(s, PHONE))
    assert fields == {"first_name": "", "last_name": "", "email": "", "birthday": "",
                      "number": PHONE, "tags": [], "groups": [], "known": False}


def test_optout_and_optin_keep_history(db: Database) -> None:
    assert db.run_sync(lambda s: store.opt_out(s, PHONE, by=PHONE)) is True
    assert db.run_sync(lambda s: store.opt_out(s, PHONE, by=PHONE)) is False
    assert db.run_sync(lambda s: store.is_opted_out(s, PHONE)) is not None
    assert db.run_sync(lambda s: store.opt_in(s, PHONE, by=PHONE, note="START")) is True
    events = db.run_sync(lambda s: [(e.action, e.note) for e in s.exec(select(OptOutEvent))])
    assert events == [("add", None), ("remove", "START")]


def test_queue_reply_without_a_request(db: Database) -> None:
    mid = db.run_sync(lambda s: store.queue_reply(s, to=PHONE, sender="36105", text="Hi",
                                                  encoding="gsm7", segments=1))
    skipped = db.run_sync(lambda s: store.queue_reply(
        s, to=PHONE, sender=None, text="Hi", encoding="gsm7", segments=1, status="skipped",
        reason="opted out"))
    assert skipped == mid + 1
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert db.run_sync(lambda s: store.sent_since(s, PHONE, since)) == 1  # skipped not counted
