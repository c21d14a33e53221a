"""The opt-out step: STOP and its variants, one confirmation, surveys closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from store.models import OptOut, OptOutEvent, SurveySession
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop.", "STOP merci", "arrêt", "Stop SMS",
                                  "désabo", "unsubscribe", "  STÖP !"])
def test_variants_opt_out_with_one_confirmation(bench: Bench, text: str) -> None:
    outcome = bench.sms(text)
    assert ("optout", "opted out") in steps(outcome)
    assert outcome.handled_by == "optout"
    assert replies(outcome) == ["Vous ne recevrez plus nos SMS. START pour revenir."]
    assert outcome.replies[0].status == "queued"  # the confirmation goes out
    assert bench.query(lambda s: s.get(OptOut, PHONE)) is not None
    (event,) = bench.query(lambda s: list(s.exec(select(OptOutEvent))))
    assert (event.action, event.source, event.by) == ("add", "sms", PHONE)


def test_words_that_only_look_like_stop_do_not(bench: Bench) -> None:
    outcome = bench.sms("stopper la pub")
    assert ("optout", "pass") in steps(outcome)
    assert bench.query(lambda s: s.get(OptOut, PHONE)) is None


def test_second_stop_sends_nothing_and_says_why(bench: Bench) -> None:
    bench.sms("STOP")
    again = bench.sms("STOP")
    assert steps(again)[-1] == ("optout", "already opted out")
    assert "no second confirmation" in again.decisions[-1].reason
    assert replies(again) == []
    assert len(bench.messages()) == 1
    assert len(bench.query(lambda s: list(s.exec(select(OptOutEvent))))) == 1


def test_stop_wins_over_an_open_survey(bench: Bench) -> None:
    bench.sms("AVIS")
    outcome = bench.sms("STOP")
    assert steps(outcome)[-1] == ("optout", "opted out")
    (session,) = bench.query(lambda s: list(s.exec(select(SurveySession))))
    assert session.status == "stopped" and session.closed_at is not None
    # the next SMS is not taken as an answer
    assert ("survey", "pass") in steps(bench.sms("4"))


def test_replies_to_an_opted_out_number_are_skipped_not_dropped(bench: Bench) -> None:
    bench.sms("STOP")
    outcome = bench.sms("HORAIRES")
    assert [(r.status, r.reason) for r in outcome.replies] == [("skipped", "opted out")]
    assert bench.messages()[-1].status == "skipped"


def test_without_a_configured_text_the_default_confirmation_is_sent(tmp_path: Path) -> None:
    from autoresponder.rules import RuleSet
    from inbound.model import DEFAULT_OPTOUT_REPLY

    for b in open_bench(tmp_path, RuleSet()):
        assert replies(b.sms("STOP")) == [DEFAULT_OPTOUT_REPLY]
