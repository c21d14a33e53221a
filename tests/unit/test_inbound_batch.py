"""SMS handled a batch per transaction decide exactly as SMS handled one at a time.

The batch reads what it knows of its senders (opt-out, survey session, contact, SMS
today) in one go; a second SMS from the same sender in the batch must still see what
the first one changed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from inbound.pipeline import Outcome
from store import contacts, queries
from store import inbound as store
from tests.unit.inbound_helpers import Bench, open_bench, replies, steps

ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (f"+3361000000{i}" for i in range(1, 7))

#: (text, sender) in arrival order: each line tests one thing the batch must not miss.
TRAFFIC = [
    ("HORAIRES", ALICE),  # a contact: the reply uses her first name
    ("HORAIRES", ALICE),  # ...and the tag and group the first SMS added
    ("STOP", BOB),
    ("HORAIRES", BOB),  # opted out by the SMS just before, in the same batch
    ("HORAIRES", CAROL),  # opted out before the batch
    ("AVIS", DAVE),  # starts a survey...
    ("4", DAVE),  # ...which this SMS answers
    ("2", ERIN),  # answers a session opened before the batch
    ("HORAIRES", FRANK),  # one SMS already today: the daily maximum of 2 is reached
    ("HORAIRES", FRANK),
    ("STOP", FRANK),  # the confirmation is never held back
    ("STOP", FRANK),  # already opted out: no second confirmation
]


def _prepare(bench: Bench) -> None:
    def setup(session: Any) -> None:
        contacts.add_contact(session, ALICE, {"first_name": "Alice"})
        queries.add_optout(session, CAROL, "cli", "admin")
        store.start_session(session, ERIN, "satisfaction", "note", bench.now)
        store.queue_reply(session, to=FRANK, sender=None, text="earlier", encoding="gsm7",
                          segments=1)

    bench.db.run_sync(setup)


def _summary(outcome: Outcome) -> tuple[Any, ...]:
    return (steps(outcome), replies(outcome),
            [(r.status, r.reason) for r in outcome.replies])


def _bench(tmp: Path, url: str | None = None) -> Bench:
    tmp.mkdir()
    bench = Bench(tmp, url=url, max_per_day=2)
    _prepare(bench)
    return bench


def one_at_a_time(tmp: Path, url: str | None = None) -> list[tuple[Any, ...]]:
    bench = _bench(tmp, url)
    try:
        return [_summary(bench.sms(text, sender)) for text, sender in TRAFFIC]
    finally:
        bench.close()


async def in_one_batch(tmp: Path, url: str | None = None) -> list[tuple[Any, ...]]:
    bench = _bench(tmp, url)
    try:
        smss = [bench.make(text, sender) for text, sender in TRAFFIC]
        outcomes = await asyncio.gather(*(bench.pipeline.handle(sms) for sms in smss))
        return [_summary(o) for o in outcomes]
    finally:
        bench.close()


async def test_a_batch_decides_as_one_sms_at_a_time(tmp_path: Path) -> None:
    expected = one_at_a_time(tmp_path / "one")
    got = await in_one_batch(tmp_path / "batch")
    assert got == expected
    # and the traffic did exercise what it is meant to
    by_line = dict(enumerate(expected))
    assert by_line[0][1] == ["Bonjour Alice, ouvert de 9h à 18h."]
    assert by_line[3][2] == [("skipped", "opted out")]
    assert by_line[4][2] == [("skipped", "opted out")]
    assert ("survey", "next") in by_line[6][0]
    assert ("survey", "next") in by_line[7][0]
    assert [r[2] for r in (by_line[8], by_line[9], by_line[10])] == [
        [("queued", None)], [("refused", "more than 2 SMS today to this number")],
        [("queued", None)]]
    assert by_line[11][1] == []


async def test_the_batch_reads_its_senders_once(tmp_path: Path) -> None:
    statements: list[str] = []
    for bench in open_bench(tmp_path):
        from sqlalchemy import event

        event.listen(bench.db.engine, "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
        smss = [bench.make("HORAIRES", f"+3362000{i:04d}") for i in range(20)]
        await asyncio.gather(*(bench.pipeline.handle(sms) for sms in smss))
    lookups = [s for s in statements if "FROM optouts" in s or "FROM survey_sessions" in s
               or "FROM contacts" in s]
    # one query each for the whole batch, not one per SMS (the tag and group writes of
    # the rule read the contact again, by design)
    assert sum("FROM optouts" in s for s in lookups) == 1
    assert sum("FROM survey_sessions" in s for s in lookups) == 1
