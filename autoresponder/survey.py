"""Survey logic without storage: is an answer valid, which question comes next, results.

The pipeline keeps the session (current question, retries, answers) in the store and
calls these for each SMS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autoresponder.fold import fold
from autoresponder.render import render
from autoresponder.rules import Question, Survey

# Folded forms; multi-word answers are matched as leading words like opt-out words.
YES_WORDS = frozenset({"OUI", "O", "YES", "Y", "OK", "OKAY", "DACCORD", "SI", "OUAIS",
                       "YEP", "YEAH", "BIEN SUR", "VOLONTIERS", "CERTAINEMENT"})
NO_WORDS = frozenset({"NON", "N", "NO", "NOPE", "PAS DU TOUT", "NAN", "JAMAIS",
                      "SURTOUT PAS", "NOT AT ALL"})
_MAX_PHRASE = 3
_NUMBER = re.compile(r"(?<![\d-])-?\d+")
# An answer with more digits than this is not a rating; int() on thousands of digits
# is slow and raises past Python's conversion limit.
_MAX_DIGITS = 18


@dataclass(frozen=True)
class Answer:
    valid: bool
    value: str | None = None  # what is stored: choice key, "yes"/"no", the number, the text


_INVALID = Answer(False, None)


def _phrases(folded: str) -> list[str]:
    """The whole folded text, then its first 3, 2 and 1 words."""
    words = folded.split(" ", _MAX_PHRASE)
    return [folded, *(" ".join(words[:n]) for n in range(min(_MAX_PHRASE, len(words)), 0, -1))]


def _choice(question: Question, text: str) -> Answer:
    folded = fold(text)
    if not folded:
        return _INVALID
    keys = list(question.choices)
    for phrase in _phrases(folded):
        for key, label in question.choices.items():
            if phrase in (fold(key), fold(label)):
                return Answer(True, key)
        if phrase.isdigit() and len(phrase) <= _MAX_DIGITS and 1 <= int(phrase) <= len(keys):
            return Answer(True, keys[int(phrase) - 1])
    return _INVALID


def _integer(question: Question, text: str) -> Answer:
    found = _NUMBER.search(text)
    if found is None or len(found.group().lstrip("-")) > _MAX_DIGITS:
        return _INVALID
    number = int(found.group())
    if question.minimum is not None and number < question.minimum:
        return _INVALID
    if question.maximum is not None and number > question.maximum:
        return _INVALID
    return Answer(True, str(number))


def _yes_no(text: str) -> Answer:
    for phrase in _phrases(fold(text)):
        if phrase in YES_WORDS:
            return Answer(True, "yes")
        if phrase in NO_WORDS:
            return Answer(True, "no")
    return _INVALID


def validate(question: Question, text: str) -> Answer:
    """Whether *text* answers *question*, and the value to store when it does."""
    if question.kind == "choice":
        return _choice(question, text)
    if question.kind == "integer":
        return _integer(question, text)
    if question.kind == "yes_no":
        return _yes_no(text)
    stripped = text.strip()
    return Answer(True, stripped) if stripped else _INVALID


def next_question(survey: Survey, question: Question, value: str | None) -> str | None:
    """The id of the question to ask after *value*; None when the survey is over."""
    branches = question.branches
    if value is not None and value in branches:
        target = branches[value]
    elif "*" in branches:  # a Question built by hand may keep "*" among its branches
        target = branches["*"]
    else:
        target = question.next
    return target if target in survey.questions else None


def render_question(question: Question, context: Mapping[str, Any]) -> str:
    """The question's SMS text for one contact (through the sandbox)."""
    return render(question.text, dict(context))


def summarise(survey: Survey, answers: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """Per question, in survey order: ``answered`` and, by type, ``counts`` (choices,
    yes/no), ``mean``/``min``/``max`` (integers). Unknown questions are ignored."""
    values: dict[str, list[str]] = {qid: [] for qid in survey.questions}
    for qid, value in answers:
        if qid in values and value is not None:
            values[qid].append(value)
    return {qid: _summary(survey.questions[qid], got) for qid, got in values.items()}


def _summary(question: Question, values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": question.kind, "text": question.text,
                           "answered": len(values)}
    if question.kind == "choice":
        counts = dict.fromkeys(question.choices, 0)
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        out["counts"] = counts
        out["labels"] = dict(question.choices)
    elif question.kind == "yes_no":
        out["counts"] = {"yes": values.count("yes"), "no": values.count("no")}
    elif question.kind == "integer":
        numbers = [int(v) for v in values if v.lstrip("-").isdigit()]
        out["mean"] = sum(numbers) / len(numbers) if numbers else None
        out["min"] = min(numbers, default=None)
        out["max"] = max(numbers, default=None)
        out["counts"] = {str(n): numbers.count(n) for n in sorted(set(numbers))}
    return out
