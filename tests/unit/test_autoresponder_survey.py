from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoresponder.loader import load_rules
from autoresponder.render import TemplateProblem
from autoresponder.rules import Question, Survey
from autoresponder.survey import Answer, next_question, render_question, summarise, validate

EXAMPLE = load_rules(Path(__file__).resolve().parents[2] / "rules.example.yaml")
SATISFACTION = EXAMPLE.surveys["satisfaction"]
NOTE = SATISFACTION.questions["note"]
RECOMMANDE = SATISFACTION.questions["recommande"]
MOMENT = EXAMPLE.surveys["creneau"].questions["moment"]
TEXT = SATISFACTION.questions["pourquoi"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("A", "A"), ("b", "B"), ("matin", "A"), ("Matin.", "A"), ("après-midi", "B"),
     ("APRES MIDI", "B"), ("apres-midi svp", "B"), ("1", "A"), ("2", "B"), (" b merci", "B"),
     ("le matin", None), ("3", None), ("0", None), ("C", None), ("", None), ("?", None)],
)
def test_choice(text: str, value: str | None) -> None:
    assert validate(MOMENT, text) == Answer(value is not None, value)


def test_choice_from_a_list_and_numeric_keys() -> None:
    question = Question(id="q", text="?", kind="choice", choices={"10": "Dix", "20": "Vingt"})
    assert validate(question, "10").value == "10"
    assert validate(question, "vingt").value == "20"
    assert validate(question, "2").value == "20"  # the position when no key is "2"


@pytest.mark.parametrize(
    ("text", "value"),
    [("4", "4"), ("4/5", "4"), ("note 4", "4"), ("Je mets 5 !", "5"), ("1", "1"),
     (" 3 sur 5", "3"), ("12", None), ("0", None), ("6", None), ("quatre", None), ("", None),
     ("-1", None), ("9" * 5000, None)],
)
def test_integer(text: str, value: str | None) -> None:
    assert validate(NOTE, text) == Answer(value is not None, value)


def test_integer_without_bounds_and_negative() -> None:
    question = Question(id="q", text="?", kind="integer")
    assert validate(question, "-3 degrés").value == "-3"
    assert validate(question, "1000000").value == "1000000"
    assert not validate(question, "aucun").valid


@pytest.mark.parametrize(
    "text",
    ["oui", "Oui !", "OUI merci", "o", "yes", "Y", "ok", "OK.", "d'accord", "D’accord",
     "si", "Ouais", "yes please", "bien sûr"],
)
def test_yes(text: str) -> None:
    assert validate(RECOMMANDE, text) == Answer(True, "yes")


@pytest.mark.parametrize(
    "text", ["non", "NON merci", "n", "no", "No way", "nope", "pas du tout", "Pas du tout !"]
)
def test_no(text: str) -> None:
    assert validate(RECOMMANDE, text) == Answer(True, "no")


@pytest.mark.parametrize("text", ["peut-être", "pas", "", "bof", "noui", "okayx", "😀"])
def test_yes_no_invalid(text: str) -> None:
    assert not validate(RECOMMANDE, text).valid


def test_text() -> None:
    assert validate(TEXT, "  L'attente était longue.  ") == Answer(True,
                                                                   "L'attente était longue.")
    assert validate(TEXT, "😀") == Answer(True, "😀")
    assert not validate(TEXT, " \n ").valid


@pytest.mark.parametrize(
    ("value", "following"),
    [("1", "pourquoi"), ("2", "pourquoi"), ("3", "recommande"), ("5", "recommande")],
)
def test_branching_on_integer(value: str, following: str) -> None:
    assert next_question(SATISFACTION, NOTE, value) == following


def test_plain_next_and_end() -> None:
    assert next_question(SATISFACTION, TEXT, "n'importe") == "recommande"
    assert next_question(SATISFACTION, RECOMMANDE, "yes") is None
    assert next_question(SATISFACTION, RECOMMANDE, "no") is None


def test_branch_to_end_and_star_in_branches() -> None:
    a = Question(id="a", text="?", kind="yes_no", branches={"no": None, "*": "b"})
    b = Question(id="b", text="?", kind="text")
    survey = Survey(name="s", questions={"a": a, "b": b}, first="a")
    assert next_question(survey, a, "no") is None
    assert next_question(survey, a, "yes") == "b"
    assert next_question(survey, b, "x") is None


def test_render_question() -> None:
    question = Question(id="q", text="{{ contact.first_name }}, votre note ({{ answers.a }}) ?",
                        kind="text")
    text = render_question(question, {"contact": {"first_name": "Zoé"}, "answers": {"a": "4"}})
    assert text == "Zoé, votre note (4) ?"
    assert render_question(NOTE, {}) == "Notez notre accueil de 1 à 5"
    with pytest.raises(TemplateProblem):
        render_question(Question(id="q", text="{{ ''.__class__.__mro__ }}", kind="text"), {})


def test_summary() -> None:
    answers = [("note", "4"), ("note", "2"), ("note", "5"), ("pourquoi", "Trop d'attente"),
               ("recommande", "yes"), ("recommande", "no"), ("recommande", "yes"),
               ("absent", "x"), ("note", None)]
    summary = summarise(SATISFACTION, answers)
    assert list(summary) == ["note", "pourquoi", "recommande"]
    assert summary["note"]["answered"] == 3
    assert summary["note"]["mean"] == pytest.approx(11 / 3)
    assert (summary["note"]["min"], summary["note"]["max"]) == (2, 5)
    assert summary["note"]["counts"] == {"2": 1, "4": 1, "5": 1}
    assert summary["pourquoi"] == {"type": "text", "text": "Qu'est-ce qui n'allait pas ?",
                                   "answered": 1}
    assert summary["recommande"]["counts"] == {"yes": 2, "no": 1}


def test_summary_of_choices_and_no_answers() -> None:
    creneau = EXAMPLE.surveys["creneau"]
    summary = summarise(creneau, [("moment", "B"), ("moment", "B")])
    assert summary["moment"]["counts"] == {"A": 0, "B": 2}
    assert summary["moment"]["labels"] == {"A": "Matin", "B": "Après-midi"}
    empty = summarise(SATISFACTION, [])
    assert empty["note"]["mean"] is None and empty["note"]["answered"] == 0


@given(st.text())
def test_validate_never_raises(text: str) -> None:
    for question in (NOTE, RECOMMANDE, MOMENT, TEXT):
        answer = validate(question, text)
        assert answer.valid == (answer.value is not None)
