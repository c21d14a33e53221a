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
from store.models import SurveySession
from store.senders import Sender

log = logging.getLogger("mail2sms.inbound")
_UNREAD: Any = object()


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
    #: What the batch already read about the sender (None: query when needed).
    known: Sender | None = None
    #: Replies queued for this SMS so far (the daily maximum counts them).
    queued: int = 0
    _contact: dict[str, Any] | None = None
    _contact_changed: bool = False
    _opt_out: Any = _UNREAD

    @property
    def contact(self) -> dict[str, Any]:
        """The sender's contact fields (read once)."""
        if self._contact is None:
            self._contact = (
                self.known.contact if self.known is not None and not self._contact_changed
                else contacts.contact_fields(self.session, self.sms.sender))
        return self._contact

    def forget_contact(self) -> None:
        """A write changed the contact (tags, groups): read it again when next needed."""
        self._contact = None
        self._contact_changed = True

    @property
    def opt_out_entry(self) -> Any | None:
        """The sender's opt-out entry (``number``, ``created_at``), None when not opted
        out (read once: the opt-out and opt-in steps, which change it, end the run)."""
        if self._opt_out is _UNREAD:
            self._opt_out = (self.known.opt_out if self.known is not None else
                             store.is_opted_out(self.session, self.sms.sender))
        return self._opt_out

    def survey_session(self) -> SurveySession | None:
        """The sender's open survey session (read by the survey step only)."""
        if self.known is not None:
            return self.known.session
        return store.open_session(self.session, self.sms.sender)

    def sent_since(self, since: datetime) -> int:
        """SMS counted against the sender's daily maximum since ``since``, this SMS's
        replies included."""
        if self.known is not None and since == self.known.since:
            return self.known.sent_today + self.queued
        return store.sent_since(self.session, self.sms.sender, since)

    @property
    def replied(self) -> bool:
        return any(d.replies for d in self.decisions)

    @property
    def opted_out(self) -> bool:
        """Whether the sender is on the opt-out list."""
        return self.opt_out_entry is not None

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
