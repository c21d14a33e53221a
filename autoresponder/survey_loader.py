"""The ``surveys:`` section of the rules file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from autoresponder.checks import Collector, parse_duration
from autoresponder.fold import fold
from autoresponder.rules import Question, Survey, Where
from autoresponder.yamlfile import Path

SURVEY_KEYS = ("timeout", "retries", "intro", "end", "abandoned", "questions")
QUESTION_KEYS = ("id", "text", "type", "choices", "min", "max", "retry", "next")
KINDS = ("choice", "integer", "text", "yes_no")
#: What survey texts may use: no ``match`` (the survey outlives the SMS that started it).
SURVEY_ROOTS = ("contact", "sms", "answers")
_YES_NO = {"YES": "yes", "OUI": "yes", "Y": "yes", "O": "yes",
           "NO": "no", "NON": "no", "N": "no"}


def parse_surveys(c: Collector, value: Any) -> dict[str, Survey]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.add(("surveys",), "expected a mapping of survey names to surveys")
        return {}
    surveys: dict[str, Survey] = {}
    for name, body in value.items():
        survey = _survey(c, str(name), body, ("surveys", str(name)))
        if survey is not None:
            surveys[str(name)] = survey
    return surveys


def _survey(c: Collector, name: str, body: Any, path: Path) -> Survey | None:
    data = c.mapping(body, path, SURVEY_KEYS)
    if data is None:
        return None
    timeout = timedelta(hours=24)
    if data.get("timeout") is not None:
        parsed = parse_duration(data["timeout"])
        if parsed is None:
            c.add((*path, "timeout"), f"bad timeout {data['timeout']!r} (expected a duration "
                  "such as 30m, 24h, 2d, or a number of seconds)")
        else:
            timeout = parsed
    retries = c.integer(data, "retries", path)
    if retries is not None and retries < 0:
        c.add((*path, "retries"), f"retries must be 0 or more, got {retries}")
        retries = None
    texts = {key: c.text(data, key, path) for key in ("intro", "end", "abandoned")}
    for key, text in texts.items():
        c.template(text, (*path, key), SURVEY_ROOTS)
    raw = data.get("questions")
    if not isinstance(raw, list) or not raw:
        c.add((*path, "questions"), "a survey needs 'questions', a list of "
              "{id, text, type} mappings")
        return None
    questions = _questions(c, raw, (*path, "questions"))
    if not questions:
        return None
    return Survey(
        name=name, questions=questions, first=next(iter(questions)), timeout=timeout,
        max_retries=2 if retries is None else retries, intro=texts["intro"], end=texts["end"],
        abandoned=texts["abandoned"], where=Where(c.file, c.lines.of(path)),
    )


def _questions(c: Collector, raw: list[Any], path: Path) -> dict[str, Question]:
    parsed: list[tuple[dict[str, Any], Path, str]] = []
    for number, item in enumerate(raw):
        qpath = (*path, number)
        data = c.mapping(item, qpath, QUESTION_KEYS)
        if data is None:
            continue
        qid = c.text(data, "id", qpath, required=True)
        if qid is None:
            continue
        if any(qid == other for _, _, other in parsed):
            c.add((*qpath, "id"), f"question id {qid!r} is used twice in this survey")
            continue
        parsed.append((data, qpath, qid))
    ids = [qid for _, _, qid in parsed]
    questions: dict[str, Question] = {}
    for position, (data, qpath, qid) in enumerate(parsed):
        following = ids[position + 1] if position + 1 < len(ids) else None
        question = _question(c, data, qpath, qid, following, ids)
        if question is not None:
            questions[qid] = question
    return questions


def _question(c: Collector, data: dict[str, Any], path: Path, qid: str,
              following: str | None, ids: list[str]) -> Question | None:
    text = c.text(data, "text", path, required=True)
    c.template(text, (*path, "text"), SURVEY_ROOTS)
    retry = c.text(data, "retry", path)
    c.template(retry, (*path, "retry"), SURVEY_ROOTS)
    kind = c.text(data, "type", path) or "text"
    if kind not in KINDS:
        c.add((*path, "type"), f"unknown question type {kind!r} (expected one of: "
              f"{', '.join(KINDS)})")
        return None
    choices = _choices(c, data, path, kind)
    minimum, maximum = c.integer(data, "min", path), c.integer(data, "max", path)
    if kind != "integer" and (minimum is not None or maximum is not None):
        c.add((*path, "min" if minimum is not None else "max"),
              "min and max apply to integer questions only")
    if minimum is not None and maximum is not None and minimum > maximum:
        c.add((*path, "min"), f"min ({minimum}) is greater than max ({maximum})")
    nxt: str | None = following
    branches: dict[str, str | None] = {}
    if "next" in data:
        nxt, branches = _next(c, data["next"], (*path, "next"), kind, choices, following, ids)
    if text is None:
        return None
    return Question(
        id=qid, text=text, kind=kind, choices=choices, minimum=minimum, maximum=maximum,
        retry=retry, branches=branches, next=nxt, where=Where(c.file, c.lines.of(path)),
    )


def _choices(c: Collector, data: dict[str, Any], path: Path, kind: str) -> dict[str, str]:
    raw = data.get("choices")
    if kind != "choice":
        if raw is not None:
            c.add((*path, "choices"), "only questions of type choice have choices")
        return {}
    if isinstance(raw, list) and raw:
        return {str(n): str(label) for n, label in enumerate(raw, 1)}
    if isinstance(raw, dict) and raw:
        return {str(key): str(label) for key, label in raw.items()}
    c.add((*path, "choices") if raw is not None else path,
          "a choice question needs 'choices': a mapping such as {A: Matin, B: Après-midi} "
          "or a list of labels")
    return {}


def _target(c: Collector, target: Any, path: Path, ids: list[str]) -> str | None:
    if target is None:
        return None
    if str(target) not in ids:
        c.add(path, f"next question {str(target)!r} is not a question of this survey "
              f"(questions: {', '.join(ids)}; null ends the survey)")
    return str(target)


def _next(c: Collector, raw: Any, path: Path, kind: str, choices: dict[str, str],
          following: str | None, ids: list[str]) -> tuple[str | None, dict[str, str | None]]:
    """``next:`` is a question id, null (the survey ends), or a map from answer to
    question id where ``*`` is any other answer (the following question when absent)."""
    if raw is None or isinstance(raw, str | int):
        return _target(c, raw, path, ids), {}
    if not isinstance(raw, dict):
        c.add(path, "expected a question id, null (end), or a mapping {answer: question id}")
        return following, {}
    branches: dict[str, str | None] = {}
    default = following
    for key, target in raw.items():
        answer = _branch_answer(c, str(key), (*path, str(key)), kind, choices)
        resolved = _target(c, target, (*path, str(key)), ids)
        if answer == "*":
            default = resolved
        elif answer is not None:
            branches[answer] = resolved
    return default, branches


def _branch_answer(c: Collector, key: str, path: Path, kind: str,
                   choices: dict[str, str]) -> str | None:
    if key == "*":
        return key
    if kind == "integer" and key.lstrip("-").isdigit():
        return str(int(key))
    if kind == "yes_no" and fold(key) in _YES_NO:
        return _YES_NO[fold(key)]
    if kind == "choice":
        for choice, label in choices.items():
            if fold(key) in (fold(choice), fold(label)):
                return choice
    expected = {
        "integer": "a whole number or '*'",
        "yes_no": "yes, no or '*'",
        "choice": f"one of the choices ({', '.join(choices)}) or '*'",
        "text": "'*' only (free text cannot be branched on)",
    }[kind]
    c.add(path, f"cannot branch on {key!r}: expected {expected}", key=True)
    return None
