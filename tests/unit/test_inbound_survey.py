"""The survey step: answers validated, retries, branching, the end, timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from store.models import SurveyAnswer, SurveySession
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


def sessions(bench: Bench) -> list[SurveySession]:
    return bench.query(lambda s: list(s.exec(select(SurveySession).order_by(
        col(SurveySession.id)))))


def answers(bench: Bench) -> list[tuple[str, str, str]]:
    return bench.query(lambda s: [(a.step, a.text, a.value) for a in s.exec(
        select(SurveyAnswer).order_by(col(SurveyAnswer.id)))])


def test_keyword_starts_it_with_intro_and_first_question_in_one_sms(bench: Bench) -> None:
    outcome = bench.sms("AVIS")
    assert replies(outcome) == ["Merci !\nDeux questions.\nNotez de 1 à 5"]
    (session,) = sessions(bench)
    assert (session.number, session.survey, session.step, session.status) == (
        PHONE, "satisfaction", "note", "open")


def test_full_run_with_branching_to_the_end(bench: Bench) -> None:
    bench.sms("AVIS")
    first = bench.sms("je mets 1")
    assert steps(first)[-1] == ("survey", "next")
    assert replies(first) == ["Pourquoi ?"]
    assert replies(bench.sms("trop d'attente")) == ["Nous recommanderiez-vous ?"]
    last = bench.sms("non")
    assert steps(last)[-1] == ("survey", "done")
    assert replies(last) == ["Merci, note 1 !"]
    assert last.handled_by == "survey" and last.rule == "satisfaction"
    assert answers(bench) == [("note", "je mets 1", "1"),
                              ("pourquoi", "trop d'attente", "trop d'attente"),
                              ("recommande", "non", "no")]
    (session,) = sessions(bench)
    assert session.status == "done" and session.closed_at is not None


def test_other_branch_skips_a_question(bench: Bench) -> None:
    bench.sms("AVIS")
    assert replies(bench.sms("5")) == ["Nous recommanderiez-vous ?"]


def test_invalid_answer_gets_the_retry_then_abandoned(bench: Bench) -> None:
    bench.sms("AVIS")
    retry = bench.sms("bof")
    assert steps(retry)[-1] == ("survey", "retry")
    assert replies(retry) == ["Un chiffre de 1 à 5."]
    assert sessions(bench)[0].retries == 1
    gone = bench.sms("9")  # out of range: retries (1) used up
    assert steps(gone)[-1] == ("survey", "abandoned")
    assert replies(gone) == ["Tant pis."]
    assert sessions(bench)[0].status == "abandoned"
    assert answers(bench) == []


def test_valid_answer_resets_the_retries(bench: Bench) -> None:
    bench.sms("AVIS")
    bench.sms("bof")
    bench.sms("3")
    assert sessions(bench)[0].retries == 0
    assert steps(bench.sms("peut-être"))[-1] == ("survey", "retry")  # one retry again


def test_question_without_retry_text_is_asked_again(tmp_path: Path) -> None:
    from tests.unit.inbound_helpers import RULES, rules

    ruleset = rules(RULES.replace('        retry: "Un chiffre de 1 à 5."\n', ""))
    for b in open_bench(tmp_path, ruleset):
        b.sms("AVIS")
        assert replies(b.sms("bof")) == ["Notez de 1 à 5"]


def test_timeout_closes_the_session_and_the_sms_goes_on(bench: Bench) -> None:
    bench.sms("AVIS")
    bench.later(hours=1, minutes=1)
    outcome = bench.sms("HORAIRES")
    survey = next(d for d in outcome.decisions if d.step == "survey")
    assert survey.decision == "pass" and "timed out" in survey.reason
    assert steps(outcome)[steps(outcome).index(("survey", "pass")) + 1] == ("keyword", "keyword")
    assert sessions(bench)[0].status == "timeout"


def test_answer_within_the_timeout_counts_from_the_last_answer(bench: Bench) -> None:
    bench.sms("AVIS")
    bench.later(minutes=50)
    bench.sms("5")
    bench.later(minutes=50)  # 100 min since the start, 50 since the last answer
    assert steps(bench.sms("oui"))[-1] == ("survey", "done")


def test_one_open_session_per_number(bench: Bench) -> None:
    bench.sms("AVIS")
    bench.sms("AVIS", sender="+33611111111")
    # a keyword is an answer while a session is open ("AVIS" is not a number: a retry)
    assert steps(bench.sms("AVIS"))[-1] == ("survey", "retry")
    statuses = [(s.number, s.status) for s in sessions(bench)]
    assert statuses == [(PHONE, "open"), ("+33611111111", "open")]


def test_session_of_a_survey_removed_from_the_rules_is_closed(bench: Bench) -> None:
    bench.sms("AVIS")
    bench.ruleset = bench.ruleset.__class__(rules=bench.ruleset.rules[:1])
    outcome = bench.sms("4")
    survey = next(d for d in outcome.decisions if d.step == "survey")
    assert "no longer in the rules" in survey.reason
    assert sessions(bench)[0].status == "abandoned"


def test_opted_out_number_is_not_enrolled(bench: Bench) -> None:
    bench.sms("STOP")
    outcome = bench.sms("AVIS")
    keyword = next(d for d in outcome.decisions if d.step == "keyword")
    assert "not started: the number is opted out" in keyword.reason
    assert sessions(bench) == []
