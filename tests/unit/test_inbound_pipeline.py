"""The pipeline as a whole: step order, decisions on the row, dry run, failures, mail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from gateway.config import MailOutConfig
from gateway.mailer import Mailer
from inbound.model import Decision
from inbound.pipeline import STEPS, Pipeline, run_pipeline
from inbound.steps.base import Context
from store.models import Contact, OptOut, SurveySession
from tests.servers.smtp_sink import SmtpSink
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


def test_the_order_is_the_documented_one() -> None:
    assert [s.name for s in STEPS] == ["dedup", "empty", "optout", "optin", "help", "survey",
                                       "keyword", "forward", "fallback"]
    for step in STEPS:
        assert step.description and "\n" not in step.description


def test_every_step_runs_until_one_is_done(bench: Bench) -> None:
    outcome = bench.sms("Bonjour")
    assert [s for s, _ in steps(outcome)] == [s.name for s in STEPS]
    assert [s for s, _ in steps(bench.sms("AIDE"))] == ["dedup", "empty", "optout", "optin",
                                                        "help"]


def test_decisions_are_stored_on_the_inbound_row(bench: Bench) -> None:
    outcome = bench.sms("HORAIRES")
    (row,) = bench.inbound()
    assert row.status == "handled" and row.handled_by == "keyword" and row.rule == "HORAIRES"
    stored = json.loads(row.decisions)
    assert stored == outcome.as_json()
    assert [d["step"] for d in stored][-3:] == ["keyword", "forward", "fallback"]
    assert stored[-3]["replies"] == ["Bonjour , ouvert de 9h à 18h."]
    assert {"step", "decision", "reason", "done"} <= set(stored[0])


def test_reply_is_queued_from_the_receiving_number(bench: Bench) -> None:
    outcome = bench.sms("HORAIRES")
    (message,) = bench.messages()
    assert (message.to, message.sender, message.status, message.request_id) == (
        PHONE, "36105", "queued", None)
    assert (message.encoding, message.segments) == ("gsm7", 1)  # "à" is in GSM-7
    assert outcome.replies[0].message_id == message.id


def test_transliteration_keeps_replies_in_gsm7(tmp_path: Path) -> None:
    for b in open_bench(tmp_path, transliterate=True):
        b.sms("HORAIRES")
        assert b.messages()[0].encoding == "gsm7"


def test_daily_maximum_applies_to_replies(tmp_path: Path) -> None:
    for b in open_bench(tmp_path, max_per_day=2):
        for _ in range(3):
            b.sms("HORAIRES")
        assert [m.status for m in b.messages()] == ["queued", "queued", "refused"]
        b.sms("STOP")  # the confirmation is never held back
        assert b.messages()[-1].status == "queued"


def test_dry_run_decides_the_same_and_writes_nothing(bench: Bench) -> None:
    bench.db.run_sync(lambda s: s.add(Contact(number=PHONE, first_name="Léa")))
    for text in ("HORAIRES", "AVIS", "STOP", "Bonjour"):
        dry = bench.sms(text, dry_run=True)
        assert dry.dry_run and dry.inbound_id is None
        assert all(r.message_id is None for r in dry.replies)
    assert bench.inbound() == [] and bench.messages() == []
    assert bench.query(lambda s: s.exec(select(OptOut)).first()) is None
    assert bench.query(lambda s: s.exec(select(SurveySession)).first()) is None
    contact = bench.query(lambda s: s.exec(select(Contact)).one())
    assert contact.tags == "[]"
    # and the real run decides what the dry run said
    dry = bench.sms("HORAIRES", dry_run=True)
    real = bench.sms("HORAIRES")
    assert steps(dry)[1:] == steps(real)[1:] and replies(dry) == replies(real)


def test_describe_and_json(bench: Bench) -> None:
    outcome = bench.sms("STOP", dry_run=True)
    text = outcome.describe()
    assert "optout" in text and "opted out" in text and "SMS back: queued" in text
    assert outcome.as_json()[-1]["decision"] == "opted out"


class _Broken:
    name = "broken"
    description = "Raises."

    def check(self, ctx: Context) -> Decision:
        raise RuntimeError("step bug")


async def test_a_failing_step_rolls_back_and_keeps_the_sms_as_error(bench: Bench) -> None:
    pipeline = Pipeline(bench.db, lambda: bench.ruleset, bench.settings,
                        steps=[*STEPS[:3], _Broken()], clock=lambda: bench.now)
    outcome = await pipeline.handle(bench.make("Bonjour", key="id:1"))
    assert steps(outcome) == [("pipeline", "error")]
    (row,) = bench.inbound()
    assert row.status == "error" and "step bug" in row.decisions
    assert bench.messages() == []
    again = await pipeline.handle(bench.make("Bonjour", key="id:1"))
    assert again.duplicate  # a gateway retry does not run it again


async def test_handle_commits_wakes_the_outbox_and_mails(bench: Bench) -> None:
    woken: list[bool] = []
    bench.staff_sent("alice@example.com", PHONE)
    with SmtpSink() as sink:
        mailer = Mailer(MailOutConfig(relay=f"127.0.0.1:{sink.port}"))
        pipeline = Pipeline(bench.db, lambda: bench.ruleset, bench.settings, mailer=mailer,
                            wake=lambda: woken.append(True), clock=lambda: bench.now)
        outcome = await pipeline.handle(bench.make("RAPPEL jeudi", key="id:2"))
        await pipeline.aclose()
        assert outcome.inbound_id is not None
        mails = sink.wait_for(2)
        assert sorted(m.rcpt_tos[0] for m in mails) == ["alice@example.com",
                                                        "rappel@example.com"]
    assert woken == []  # RAPPEL has no reply: nothing for the outbox
    await pipeline.handle(bench.make("HORAIRES", key="id:3"))
    assert woken == [True]


async def test_run_pipeline_for_rules_try(bench: Bench) -> None:
    outcome = await run_pipeline(bench.db, bench.ruleset, bench.settings,
                                 bench.make("HORAIRES"), dry_run=True)
    assert outcome.rule == "HORAIRES" and bench.inbound() == []
