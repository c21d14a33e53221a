"""Survey results as stored: sessions and their answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from store.models import SurveyAnswer, SurveySession


@dataclass
class Respondent:
    """One session of a survey with its latest answer to each question."""

    number: str
    status: str
    started_at: datetime
    closed_at: datetime | None
    answers: dict[str, str] = field(default_factory=dict)  # question id -> value


def respondents(session: Session, survey: str) -> list[Respondent]:
    """Every session of ``survey``, oldest first (a number that took it twice counts
    twice: each session is one respondent)."""
    sessions = list(session.exec(
        select(SurveySession).where(SurveySession.survey == survey)
        .order_by(col(SurveySession.started_at), col(SurveySession.id))
    ))
    by_id = {s.id: Respondent(s.number, s.status, s.started_at, s.closed_at) for s in sessions}
    if not by_id:
        return []
    answers = session.exec(
        select(SurveyAnswer).where(SurveyAnswer.survey == survey)
        .order_by(col(SurveyAnswer.at), col(SurveyAnswer.id))
    )
    for answer in answers:
        respondent = by_id.get(answer.session_id)
        if respondent is not None:
            respondent.answers[answer.step] = answer.value  # a later answer wins
    return list(by_id.values())
