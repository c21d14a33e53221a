"""The rules file's fallback reply, for an SMS nothing else answered.

Not sent when the SMS was mailed to the staff member who wrote to the number: the usual
fallback says "replies are not read", which would then be untrue. Copies to
``inbound.forward_to`` do not count (they are for monitoring). At most one fallback per
number per ``Settings.fallback_every``, so two autoresponders cannot talk forever.
"""

from __future__ import annotations

from datetime import timedelta

from inbound.model import Decision
from inbound.steps.base import Context
from store import inbound as store


class Fallback:
    name = "fallback"
    description = "The fallback reply, when enabled and nothing else answered."

    def check(self, ctx: Context) -> Decision:
        fallback = ctx.rules.fallback
        if not fallback.enabled or not fallback.reply:
            return Decision(self.name, "pass", "no fallback reply enabled")
        if ctx.rule_forward is not None or ctx.replied:
            return Decision(self.name, "pass", "a rule took the SMS")
        if ctx.mailed_staff:
            return Decision(self.name, "pass",
                            f"mailed to {ctx.mailed_staff}, who may answer it")
        if ctx.opted_out:
            return Decision(self.name, "pass", "the number is opted out")
        every = ctx.settings.fallback_every
        since = ctx.now - timedelta(seconds=every)
        if store.handled_since(ctx.session, ctx.sms.sender, self.name, since):
            return Decision(self.name, "pass",
                            f"a fallback reply went to this number less than {every / 3600:g} h "
                            "ago (no loops with other autoresponders)")
        problems: list[str] = []
        reply = ctx.try_render(fallback.reply, problems)
        if reply is None:
            return Decision(self.name, "pass", "; ".join(problems) or "the fallback is empty")
        return Decision(self.name, "reply", "nothing else answered", done=True, replies=[reply])
