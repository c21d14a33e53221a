"""What every step sees (the Context) and provides (the Step protocol)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session

from autoresponder.fold import first_word
from autoresponder.render import TemplateProblem, render
from autoresponder.rules import RuleSet
from inbound.model import Decision, Settings, Sms
from sms.phones import mask
from store import contacts
from store import inbound as store

log = logging.getLogger("mail2sms.inbound")


@dataclass
class Context:
    """One SMS going through the steps, with what earlier steps learnt about it.

    Steps read through ``session``; they write only by returning ``Decision.writes``,
    which the pipeline runs in the same transaction (and skips in a dry run). The one
    exception is the dedup step's insert, which is how duplicates are told apart.
    """

    session: Session
    sms: Sms
    rules: RuleSet
    settings: Settings
    now: datetime
    dry_run: bool = False
    inbound_id: int | None = None
    decisions: list[Decision] = field(default_factory=list)
    #: Answers of the survey session this SMS answered (for the end text).
    answers: dict[str, str] = field(default_factory=dict)
    #: Mailboxes a matched rule forwards the SMS to; None when no rule matched.
    rule_forward: tuple[str, ...] | None = None
    #: The staff member the SMS was mailed to, threaded under their email.
    mailed_staff: str | None = None
    _contact: dict[str, Any] | None = None
    _opted_out: bool | None = None

    @property
    def contact(self) -> dict[str, Any]:
        """The sender's contact fields (read once)."""
        if self._contact is None:
            self._contact = contacts.contact_fields(self.session, self.sms.sender)
        return self._contact

    def forget_contact(self) -> None:
        """A write changed the contact (tags, groups): read it again when next needed."""
        self._contact = None

    @property
    def replied(self) -> bool:
        return any(d.replies for d in self.decisions)

    @property
    def opted_out(self) -> bool:
        """Whether the sender is on the opt-out list (read once: the opt-out and opt-in
        steps, which change it, end the run)."""
        if self._opted_out is None:
            self._opted_out = store.is_opted_out(self.session, self.sms.sender) is not None
        return self._opted_out

    def sms_fields(self) -> dict[str, Any]:
        """What templates see as ``sms``."""
        received = self.sms.received_at or self.now
        local = received.astimezone(ZoneInfo(self.settings.timezone))
        return {"text": self.sms.text, "from": self.sms.sender, "sender": self.sms.sender,
                "to": self.sms.receiver, "receiver": self.sms.receiver,
                "keyword": first_word(self.sms.text), "received_at": local.isoformat()}

    def render(self, template: str, *, match: dict[str, str] | None = None,
               answers: dict[str, str] | None = None) -> str:
        """Render a reply in the sandbox; raises TemplateProblem (the SMS text is data
        in ``sms.text``, never a template itself)."""
        fields = {"contact": self.contact, "sms": self.sms_fields(), "match": match or {},
                  "answers": answers if answers is not None else self.answers}
        return render(template, fields).strip()

    def try_render(self, template: str | None, problems: list[str], **kwargs: Any) -> str | None:
        """``render``, with a failure noted in ``problems`` (and logged) instead."""
        if not template:
            return None
        try:
            text = self.render(template, **kwargs)
        except TemplateProblem as exc:
            problems.append(f"reply not sent: {exc}")
            log.warning("inbound: reply to %s not rendered: %s", mask(self.sms.sender), exc)
            return None
        return text or None


class Step(Protocol):
    """One stage of the pipeline, in the shape of GNU Mailman's rules."""

    name: str
    description: str

    def check(self, ctx: Context) -> Decision:
        """Decide what to do with ``ctx.sms``; never raises for bad input."""
        ...
