"""The sender's open survey session: the SMS answers its current question."""

from __future__ import annotations

from autoresponder import survey as logic
from autoresponder.rules import Survey
from inbound.model import Decision, Write
from inbound.steps.base import Context
from store import inbound as store
from store.models import SurveySession


class SurveyAnswer:
    name = "survey"
    description = "An open survey session takes the SMS as the answer to its question."

    def check(self, ctx: Context) -> Decision:
        session = ctx.survey_session()
        if session is None or session.id is None:
            return Decision(self.name, "pass", "no open survey session")
        sid, now = session.id, ctx.now
        survey = ctx.rules.surveys.get(session.survey)
        question = survey.questions.get(session.step or "") if survey else None
        if survey is None or question is None:
            # The rules file changed under the session: nothing left to ask.
            return Decision(self.name, "pass",
                            f"open session #{sid} is for survey {session.survey!r} question "
                            f"{session.step!r}, no longer in the rules: closed",
                            writes=[lambda s: store.close_session(s, sid, "abandoned", now)])
        last = session.updated_at
        if last.tzinfo is None:  # SQLite hands datetimes back naive (they are UTC)
            last = last.replace(tzinfo=now.tzinfo)
        if now - last > survey.timeout:
            return Decision(self.name, "pass",
                            f"survey {survey.name!r} session #{sid} timed out (no answer for "
                            f"{survey.timeout}): closed, the SMS goes on",
                            writes=[lambda s: store.close_session(s, sid, "timeout", now)])
        answer = logic.validate(question, ctx.sms.text)
        if not answer.valid or answer.value is None:
            return self._invalid(ctx, survey, session, question.retry, question.text)
        return self._valid(ctx, survey, session, answer.value)

    def _invalid(self, ctx: Context, survey: Survey, session: SurveySession,
                 retry: str | None, question_text: str) -> Decision:
        assert session.id is not None
        sid, now, step = session.id, ctx.now, session.step or ""
        retries = session.retries + 1
        answers = store.answers_of(ctx.session, sid)
        problems: list[str] = []
        if retries > survey.max_retries:
            reply = ctx.try_render(survey.abandoned, problems, answers=answers)
            return Decision(
                self.name, "abandoned",
                "; ".join([f"invalid answer to {step!r}, {retries - 1} retries used up: "
                           f"survey {survey.name!r} abandoned", *problems]),
                done=True, rule=survey.name, replies=[reply] if reply else [],
                writes=[lambda s: store.close_session(s, sid, "abandoned", now)])
        # Without a retry text, asking the question again says what is expected.
        reply = ctx.try_render(retry or question_text, problems, answers=answers)
        return Decision(
            self.name, "retry",
            "; ".join([f"invalid answer to {step!r} (retry {retries} of "
                       f"{survey.max_retries})", *problems]),
            done=True, rule=survey.name, replies=[reply] if reply else [],
            writes=[lambda s: store.advance_session(s, sid, step=step, retries=retries,
                                                    now=now)])

    def _valid(self, ctx: Context, survey: Survey, session: SurveySession,
               value: str) -> Decision:
        assert session.id is not None
        sid, now, step, text = session.id, ctx.now, session.step or "", ctx.sms.text
        question = survey.questions[step]
        answers = {**store.answers_of(ctx.session, sid), step: value}
        ctx.answers = answers
        writes: list[Write] = [lambda s: store.add_answer(
            s, sid, survey=survey.name, step=step, text=text, value=value, now=now)]
        following = logic.next_question(survey, question, value)
        problems: list[str] = []
        if following is None:
            reply = ctx.try_render(survey.end, problems, answers=answers)
            writes.append(lambda s: store.close_session(s, sid, "done", now))
            return Decision(self.name, "done",
                            "; ".join([f"{step!r} = {value!r}; survey {survey.name!r} "
                                       "complete", *problems]),
                            done=True, rule=survey.name, replies=[reply] if reply else [],
                            writes=writes)
        reply = ctx.try_render(survey.questions[following].text, problems, answers=answers)
        writes.append(lambda s: store.advance_session(s, sid, step=following, retries=0,
                                                      now=now))
        return Decision(self.name, "next",
                        "; ".join([f"{step!r} = {value!r}; next question {following!r}",
                                   *problems]),
                        done=True, rule=survey.name, replies=[reply] if reply else [],
                        writes=writes)
