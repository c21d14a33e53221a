"""START: off the opt-out list, only for the number that texts it (the person's consent)."""

from __future__ import annotations

from autoresponder.matcher import is_optin
from inbound.model import Decision
from inbound.steps.base import Context
from store import inbound as store


class OptIn:
    name = "optin"
    description = "START (and the rules file's opt-in words): re-subscribe this number."

    def check(self, ctx: Context) -> Decision:
        if not is_optin(ctx.rules, ctx.sms.text):
            return Decision(self.name, "pass", "not an opt-in word")
        if not ctx.opted_out:
            # Not ours to answer: a keyword rule or the staff may make sense of it.
            return Decision(self.name, "pass", "opt-in word, but the number is not opted out")
        number = ctx.sms.sender
        problems: list[str] = []
        reply = ctx.try_render(ctx.rules.optin.reply or ctx.settings.optin_reply, problems)
        return Decision(
            self.name, "opted in",
            "; ".join(["removed from the opt-out list at the request of its own phone",
                       *problems]),
            done=True, replies=[reply] if reply else [], to_opted_out=True,
            writes=[lambda s: store.opt_in(s, number, source="sms", by=number,
                                           note="START from the number itself")])
