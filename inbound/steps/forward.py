"""Mail the SMS to the staff member who last wrote to the number, and to forward_to."""

from __future__ import annotations

from email.message import Message

from inbound.model import Decision
from inbound.replies import build_reply
from inbound.steps.base import Context
from store import inbound as store


class Forward:
    name = "forward"
    description = ("Mail a reply no rule took (or a rule forwards) to its staff writer, "
                   "threaded, and every SMS reaching this step to inbound.forward_to.")

    def check(self, ctx: Context) -> Decision:
        sms, settings = ctx.sms, ctx.settings
        rule_forward = ctx.rule_forward  # None: no rule matched
        received = sms.received_at or ctx.now
        emails: list[Message] = []
        mailed: list[str] = []
        reasons: list[str] = []
        rule = next((d.rule for d in ctx.decisions if d.step == "keyword" and d.rule), None)

        def add(to: str, message: Message) -> None:
            emails.append(message)
            mailed.append(to)

        if rule_forward is None or rule_forward:
            writer = (store.last_staff_writer(ctx.session, sms.sender)
                      if settings.reply_to_sender else None)
            if writer is not None:
                add(writer.user, build_reply(sms, to=writer.user, contact=ctx.contact,
                                             settings=settings, received=received,
                                             writer=writer, rule=rule))
                ctx.mailed_staff = writer.user
                reasons.append(f"threaded reply to {writer.user}, who last wrote to this "
                               f"number (request #{writer.request_id})")
            elif settings.reply_to_sender:
                reasons.append("nobody wrote to this number by email")
        copies = [*(rule_forward or ()), *settings.forward_to]
        for mailbox in dict.fromkeys(copies):
            if mailbox.lower() not in (m.lower() for m in mailed):
                add(mailbox, build_reply(sms, to=mailbox, contact=ctx.contact,
                                         settings=settings, received=received, rule=rule))
        if len(mailed) > (1 if ctx.mailed_staff else 0):
            reasons.append("copies to " + ", ".join(m for m in mailed if m != ctx.mailed_staff))
        if not emails:
            return Decision(self.name, "pass", "; ".join(
                [*reasons, "no mailbox to forward to (inbound.forward_to is empty)"]))
        return Decision(self.name, "mailed", "; ".join(reasons), emails=emails,
                        mailed_to=mailed)
