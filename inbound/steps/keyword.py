"""The rules file's keyword and regex rules: reply, forward, tag, group, start a survey."""

from __future__ import annotations

from autoresponder.matcher import match
from autoresponder.rules import Rule
from inbound.model import Decision, Write
from inbound.steps.base import Context
from store import contacts
from store import inbound as store


class Keyword:
    name = "keyword"
    description = "The first rule (file order) whose keyword or regex the SMS matches."

    def check(self, ctx: Context) -> Decision:
        found = match(ctx.rules, ctx.sms.text, ctx.sms.receiver)
        if found is None:
            return Decision(self.name, "pass", "no keyword or regex rule matches")
        rule, number = found.rule, ctx.sms.sender
        ctx.rule_forward = rule.forward_to
        problems: list[str] = []
        done: list[str] = [f"rule {rule.name!r} ({rule.where})"]
        texts = [ctx.try_render(rule.reply, problems, match=found.groups)]
        writes: list[Write] = []
        if rule.tags:
            tags = rule.tags
            writes.append(lambda s: contacts.add_tags(s, number, tags))
            done.append(f"tags {', '.join(tags)}")
        if rule.add_to_groups:
            groups = rule.add_to_groups
            writes.append(lambda s: contacts.add_to_groups(s, number, groups))
            done.append(f"groups {', '.join(groups)}")
        if rule.survey:
            started, survey_texts = self._survey(ctx, rule, problems, writes)
            done.append(started)
            texts += survey_texts
        if rule.forward_to:
            done.append(f"forwarded to {', '.join(rule.forward_to)}")
        if rule.tags or rule.add_to_groups:
            writes.append(lambda s: ctx.forget_contact())
        # One SMS: the intro, the question and the reply must not arrive out of order.
        reply = "\n".join(t for t in texts if t)
        # Not done: the forward step still mails it (to the rule's mailboxes and
        # inbound.forward_to); the fallback sees that a rule took it.
        return Decision(self.name, "keyword", "; ".join(done + problems),
                        replies=[reply] if reply else [], writes=writes, rule=rule.name)

    def _survey(self, ctx: Context, rule: Rule, problems: list[str],
                writes: list[Write]) -> tuple[str, list[str | None]]:
        survey = ctx.rules.surveys.get(rule.survey or "")
        if survey is None:
            return f"survey {rule.survey!r} not in the rules: not started", []
        if ctx.opted_out:
            return f"survey {survey.name!r} not started: the number is opted out", []
        number, now, first = ctx.sms.sender, ctx.now, survey.first
        writes.append(lambda s: store.start_session(s, number, survey.name, first, now))
        texts = [ctx.try_render(survey.intro, problems, answers={}),
                 ctx.try_render(survey.questions[first].text, problems, answers={})]
        return f"survey {survey.name!r} started at {first!r}", texts
