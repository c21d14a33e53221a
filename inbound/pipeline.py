"""The inbound pipeline: each received SMS goes through these steps, in this order.

    dedup -> empty -> opt-out -> opt-in -> help -> survey -> keyword -> forward -> fallback

A step that is ``done`` ends the run. Every verdict is stored (JSON) on the Inbound row.
All of it happens in one transaction: the SMS, the opt-out, the answers and the reply
rows commit together; the emails go out after the commit. A dry run decides the same
way and writes and sends nothing (``mail2sms rules try``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from autoresponder.rules import RuleSet
from inbound.model import Clock, Decision, Settings, Sms, utc_clock
from inbound.steps.base import Context, Step
from inbound.steps.dedup import Dedup
from inbound.steps.empty import Empty
from inbound.steps.fallback import Fallback
from inbound.steps.forward import Forward
from inbound.steps.help import Help
from inbound.steps.keyword import Keyword
from inbound.steps.optin import OptIn
from inbound.steps.optout import OptOut
from inbound.steps.survey import SurveyAnswer
from sms.encoding import analyse, transliterate
from sms.phones import mask
from store import inbound as store
from store import senders
from store.batches import Batcher
from store.db import Database
from store.models import InboundStatus, MessageStatus

log = logging.getLogger("mail2sms.inbound")

_PHONE = re.compile(r"\+\d{6,15}")  # E.164: where an SMS can be sent back

STEPS: tuple[Step, ...] = (
    Dedup(), Empty(), OptOut(), OptIn(), Help(), SurveyAnswer(), Keyword(), Forward(),
    Fallback(),
)

#: Something with the Mailer's ``send_batch`` (gateway.mailer.Mailer).
MailSender = Any


@dataclass
class Reply:
    """An SMS answering the received one, as queued (or as it would be, in a dry run)."""

    text: str
    status: str  # queued | skipped | refused
    reason: str | None
    encoding: str
    segments: int
    message_id: int | None = None


@dataclass
class Outcome:
    """What the pipeline decided for one SMS."""

    sms: Sms
    decisions: list[Decision]
    dry_run: bool = False
    inbound_id: int | None = None
    replies: list[Reply] = field(default_factory=list)
    emails: list[Message] = field(default_factory=list)

    @property
    def duplicate(self) -> bool:
        return any(d.step == "dedup" and d.decision == "duplicate" for d in self.decisions)

    @property
    def handled_by(self) -> str | None:
        """The step that answered; else the first that decided something."""
        for d in reversed(self.decisions):
            if d.replies:
                return d.step
        return next((d.step for d in self.decisions
                     if d.step != "dedup" and d.decision != "pass"), None)

    @property
    def rule(self) -> str | None:
        return next((d.rule for d in self.decisions if d.rule), None)

    def as_json(self) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.decisions]

    def describe(self) -> str:
        """Plain text, one step a paragraph, for ``rules try``."""
        lines = [d.describe() for d in self.decisions]
        for reply in self.replies:
            state = reply.status + (f" ({reply.reason})" if reply.reason else "")
            lines.append(f"SMS back: {state}, {reply.encoding}, {reply.segments} part(s)")
        return "\n".join(lines)


class Pipeline:
    """Runs the steps for each SMS; ``rules`` returns the RuleSet in force (it may be
    reloaded between two SMS)."""

    def __init__(
        self,
        db: Database,
        rules: Callable[[], RuleSet],
        settings: Settings,
        *,
        mailer: MailSender | None = None,
        clock: Clock = utc_clock,
        wake: Callable[[], None] | None = None,
        steps: Sequence[Step] = STEPS,
    ) -> None:
        self.db = db
        self.rules = rules
        self.settings = settings
        self.mailer = mailer
        self.clock = clock
        self.wake = wake or (lambda: None)
        self.steps = tuple(steps)
        self._mailing: set[asyncio.Task[None]] = set()
        # At a few hundred SMS a second, one thread hop and one commit per SMS cost more
        # than the SMS itself: those arriving together share a transaction, handled in
        # arrival order, each seeing the ones before.
        self._batcher: Batcher[Sms, Outcome] = Batcher(db, self._run_one,
                                                       write_all=self._run_batch)

    async def handle(self, sms: Sms, *, dry_run: bool = False) -> Outcome:
        """Decide and (unless ``dry_run``) commit; emails are sent in the background."""
        if dry_run:
            ruleset, now = self.rules(), self.clock()
            return await self.db.run(lambda s: self.run_in(s, sms, ruleset, now, True))
        try:
            outcome = await self._batcher(sms)
        except Exception as exc:  # rolled back: kept as an error (raises if even that fails)
            outcome = await self._failed(sms, self.clock(), exc)
        self._after(sms, outcome)
        return outcome

    def _run_batch(self, session: Session, smss: list[Sms]) -> list[Outcome]:
        ruleset, now = self.rules(), self.clock()
        since = _start_of_day(now, self.settings.timezone)
        known = senders.look_up(session, (sms.sender for sms in smss), since)
        return [self.run_in(session, sms, ruleset, now, known=known.take(sms.sender))
                for sms in smss]

    def _run_one(self, session: Session, sms: Sms) -> Outcome:
        return self.run_in(session, sms, self.rules(), self.clock())

    def _after(self, sms: Sms, outcome: Outcome) -> None:
        """What follows the commit: wake the dispatcher, send the emails."""
        if outcome.duplicate:
            return
        if any(r.status == MessageStatus.QUEUED for r in outcome.replies):
            self.wake()
        if outcome.emails:
            self._mail(outcome.emails, sms)

    def run_in(self, session: Session, sms: Sms, ruleset: RuleSet, now: datetime,
               dry_run: bool = False, known: senders.Sender | None = None) -> Outcome:
        """The steps in the caller's transaction (on a database thread); ``known``: what
        the batch already read about the sender."""
        ctx = Context(session=session, sms=sms, rules=ruleset, settings=self.settings,
                      now=now, dry_run=dry_run, known=known)
        for step in self.steps:
            decision = step.check(ctx)
            ctx.decisions.append(decision)
            if not dry_run:
                for write in decision.writes:
                    write(session)
            if decision.done:
                break
        outcome = Outcome(sms=sms, decisions=ctx.decisions, dry_run=dry_run,
                          inbound_id=ctx.inbound_id)
        if outcome.duplicate:
            return outcome
        for decision in ctx.decisions:
            outcome.emails += decision.emails
            for text in decision.replies:
                outcome.replies.append(self._reply(ctx, decision, text))
        if ctx.inbound_id is not None:
            store.record_decisions(session, ctx.inbound_id, status=InboundStatus.HANDLED,
                                   handled_by=outcome.handled_by, decisions=outcome.as_json(),
                                   rule=outcome.rule)
        return outcome

    def _reply(self, ctx: Context, decision: Decision, text: str) -> Reply:
        if self.settings.transliterate:
            text = transliterate(text)
        info = analyse(text)
        status, reason = MessageStatus.QUEUED, None
        number = ctx.sms.sender
        if not _PHONE.fullmatch(number):
            status, reason = MessageStatus.SKIPPED, "the sender is not a phone number"
        elif decision.to_opted_out:
            pass  # the STOP/START confirmation: consent is what it is about
        elif ctx.opted_out:
            status, reason = MessageStatus.SKIPPED, "opted out"
        else:
            since = _start_of_day(ctx.now, self.settings.timezone)
            if ctx.sent_since(since) >= self.settings.max_per_day:
                status = MessageStatus.REFUSED
                reason = f"more than {self.settings.max_per_day} SMS today to this number"
        reply = Reply(text, status, reason, info.encoding, info.segments)
        if not ctx.dry_run:
            reply.message_id = store.queue_reply(
                ctx.session, to=number, sender=ctx.sms.receiver or None, text=text,
                encoding=info.encoding, segments=info.segments, status=status, reason=reason)
            if status == MessageStatus.QUEUED:
                ctx.queued += 1
        if reason:
            log.info("inbound: reply to %s %s: %s", mask(number), status, reason)
        return reply

    async def _failed(self, sms: Sms, now: datetime, exc: Exception) -> Outcome:
        """A step failed: everything it did is rolled back; the SMS is kept with the error
        (so a gateway retry is not processed again). Raises when even that cannot be."""
        log.exception("inbound: the SMS from %s could not be handled", mask(sms.sender))
        decision = Decision("pipeline", "error", f"{type(exc).__name__}: {exc}"[:500],
                            done=True)

        def keep(session: Session) -> int | None:
            inbound_id = store.insert_inbound(
                session, dedup_key=sms.dedup_key, sender=sms.sender, receiver=sms.receiver,
                text=sms.text, gateway_id=sms.gateway_id, gateway_time=sms.gateway_time,
                received_at=sms.received_at or now)
            if inbound_id is not None:
                store.record_decisions(session, inbound_id, status=InboundStatus.ERROR,
                                       handled_by=None, decisions=[decision.as_dict()])
            return inbound_id

        inbound_id = await self.db.run(keep)
        return Outcome(sms=sms, decisions=[decision], inbound_id=inbound_id)

    # --- emails, after the commit -----------------------------------------------------

    def _mail(self, emails: list[Message], sms: Sms) -> None:
        if self.mailer is None:
            log.warning("inbound: no mailer: %d email(s) for the SMS from %s not sent",
                        len(emails), mask(sms.sender))
            return
        task = asyncio.get_running_loop().create_task(self._send(emails, sms))
        self._mailing.add(task)
        task.add_done_callback(self._mailing.discard)

    async def _send(self, emails: list[Message], sms: Sms) -> None:
        try:
            results = await self.mailer.send_batch(emails)
        except Exception:
            log.exception("inbound: mailing the SMS from %s failed", mask(sms.sender))
            return
        for message, error in zip(emails, results, strict=True):
            if error is not None:
                log.warning("inbound: SMS from %s not mailed to %s: %s", mask(sms.sender),
                            message["To"], error)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Let emails in flight go out (bounded)."""
        if self._mailing:
            _, pending = await asyncio.wait(set(self._mailing), timeout=timeout)
            for task in pending:
                task.cancel()


def _start_of_day(now: datetime, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(now.tzinfo)


async def run_pipeline(db: Database, ruleset: RuleSet, settings: Settings, sms: Sms, *,
                       dry_run: bool = False, clock: Clock = utc_clock,
                       mailer: MailSender | None = None) -> Outcome:
    """One SMS through the pipeline: what ``mail2sms rules try`` calls with ``dry_run``."""
    pipeline = Pipeline(db, lambda: ruleset, settings, mailer=mailer, clock=clock)
    try:
        return await pipeline.handle(sms, dry_run=dry_run)
    finally:
        await pipeline.aclose()


def decisions_json(outcome: Outcome) -> str:
    return json.dumps(outcome.as_json(), ensure_ascii=False, indent=2)
