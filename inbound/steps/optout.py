"""STOP and its variants: on the opt-out list at once, one confirmation, surveys closed."""

from __future__ import annotations

from autoresponder.matcher import is_optout
from inbound.model import Decision
from inbound.steps.base import Context
from store import inbound as store


class OptOut:
    name = "optout"
    description = "STOP (and the rules file's opt-out words): opt out, confirm once."

    def check(self, ctx: Context) -> Decision:
        if not is_optout(ctx.rules, ctx.sms.text):
            return Decision(self.name, "pass", "not an opt-out word")
        number, now = ctx.sms.sender, ctx.now
        # STOP always wins over a survey: the open session ends here.
        writes = [lambda s: store.close_open_sessions(s, number, "stopped", now)]
        entry = ctx.opt_out_entry
        if entry is not None:
            since = entry.created_at.date().isoformat() if entry.created_at else "before"
            return Decision(self.name, "already opted out",
                            f"on the opt-out list since {since}: no second confirmation",
                            done=True, writes=writes)
        problems: list[str] = []
        reply = ctx.try_render(ctx.rules.optout.reply or ctx.settings.optout_reply, problems)
        writes.append(lambda s: store.opt_out(s, number, source="sms", by=number))
        reason = "added to the opt-out list: every later SMS to this number is skipped"
        return Decision(self.name, "opted out", "; ".join([reason, *problems]), done=True,
                        replies=[reply] if reply else [], writes=writes, to_opted_out=True)
