"""HELP / AIDE: the configured help text."""

from __future__ import annotations

from autoresponder.matcher import is_help
from inbound.model import Decision
from inbound.steps.base import Context


class Help:
    name = "help"
    description = "HELP (and the rules file's help words): answer with the help text."

    def check(self, ctx: Context) -> Decision:
        if not is_help(ctx.rules, ctx.sms.text):
            return Decision(self.name, "pass", "not a help word")
        if not ctx.rules.help.reply:
            return Decision(self.name, "pass", "help word, but the rules file has no help reply")
        problems: list[str] = []
        reply = ctx.try_render(ctx.rules.help.reply, problems)
        return Decision(self.name, "help", "; ".join(["help text sent", *problems]),
                        done=True, replies=[reply] if reply else [])
