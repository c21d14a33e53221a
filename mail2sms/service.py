"""What happens to a SendRequest, whichever intake it came from."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from sqlmodel import Session

from campaigns.plan import Plan, UserPolicy
from campaigns.queue import prepare, queue_request
from campaigns.request import SendRequest
from gateway.mailer import Mailer
from mail2sms.config import Config
from mail2sms.report import credit_alert, error_report, plan_report, summary_line
from store import credit
from store.db import Database

log = logging.getLogger("mail2sms.service")

#: Reports sent over one relay connection at most.
_MAIL_BATCH = 50


class UnknownUser(ValueError):
    pass


@dataclass
class Outcome:
    plan: Plan
    request_id: int | None

    @property
    def summary(self) -> str:
        ref = f" (request #{self.request_id})" if self.request_id else ""
        return f"accepted: {summary_line(self.plan)}{ref}"


class Service:
    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        mailer: Mailer | None = None,
        wake: Callable[[], None] | None = None,
    ):
        self.config = config
        self.db = db
        self.mailer = mailer
        self.wake = wake or (lambda: None)
        self._outgoing: asyncio.Queue[Callable[[], Message]] | None = None
        self._mail_worker: asyncio.Task | None = None

    def policy_for(self, user: str) -> UserPolicy:
        entry = self.config.user(user)
        if entry is None:
            raise UnknownUser(f"{user} is not a user in the config")
        return UserPolicy(
            email=entry.email, sender=entry.sender, test_number=entry.test_number,
            daily_limit=entry.daily_limit, category=entry.category,
        )

    async def preview(self, request: SendRequest) -> Plan:
        """What the request would do; writes nothing."""
        policy = self.policy_for(request.user)
        return await self.db.run(lambda s: prepare(
            s, request, policy=policy, compliance=self.config.compliance,
            shortcode=self.config.gateway.shortcode, credit_enabled=self.config.credit.enabled))

    async def submit(self, request: SendRequest, *, report: bool = True) -> Outcome:
        """Plan and commit the request; the report email goes out in the background."""
        policy = self.policy_for(request.user)

        def queue(session: Session) -> tuple[Plan, int, int | None]:
            plan, request_id = queue_request(
                session, request, policy=policy, compliance=self.config.compliance,
                shortcode=self.config.gateway.shortcode,
                credit_enabled=self.config.credit.enabled)
            return plan, request_id, self._claim_credit_alert(session, plan)

        plan, request_id, alert_balance = await self.db.run(queue)
        outcome = Outcome(plan, request_id)
        if alert_balance is not None:
            self._credit_alert(alert_balance)
        if not plan.refused:
            self.wake()
        if report:
            self._mail(lambda: plan_report(
                plan, request_id=request_id, sender_addr=self.config.mail_out.from_,
                to=request.user, timezone=self.config.compliance.timezone,
                cost=self.config.credit.cost))
        return outcome

    def _claim_credit_alert(self, session: Session, plan: Plan) -> int | None:
        """The balance to alert about, when this send took it under the threshold and
        no alert went out since the last top-up (claimed in the send's transaction)."""
        cfg = self.config.credit
        # Without a mailer (the CLI) the alert is left for the server's next send.
        if (not cfg.enabled or cfg.alert_below is None or not cfg.alert_to
                or self.mailer is None or plan.credit_left is None
                or plan.credit_left >= cfg.alert_below):
            return None
        return credit.claim_alert(session, cfg.alert_below)

    def _credit_alert(self, left: int) -> None:
        cfg = self.config.credit
        assert cfg.alert_below is not None
        log.warning("credit is low: %d segment(s) left, under the %d of credit.alert_below; "
                    "alert mailed to %s", left, cfg.alert_below, ", ".join(cfg.alert_to))
        self._mail(lambda: credit_alert(
            left=left, threshold=cfg.alert_below or 0, to=cfg.alert_to,
            sender_addr=self.config.mail_out.from_, timezone=self.config.compliance.timezone))

    def report_parse_error(self, user: str, raw: bytes, reason: str) -> None:
        subject, message_id = "", None
        try:
            head = email.message_from_bytes(raw[:65536], policy=email.policy.default)
            subject = str(head.get("Subject", ""))
            message_id = str(head.get("Message-ID", "")) or None
        except Exception:  # the report goes out even when the headers are junk
            pass
        self._mail(lambda: error_report(
            subject=subject, in_reply_to=message_id, reason=reason,
            sender_addr=self.config.mail_out.from_, to=user,
            timezone=self.config.compliance.timezone))

    def _mail(self, build: Callable[[], Message]) -> None:
        """Queue a report; it is built and sent after the SMTP answer, off its path."""
        if self.mailer is None:
            return
        if self._outgoing is None:
            self._outgoing = asyncio.Queue()
            self._mail_worker = asyncio.get_running_loop().create_task(self._deliver())
        self._outgoing.put_nowait(build)

    async def _deliver(self) -> None:
        """Send queued reports, a burst at a time over one relay connection."""
        assert self._outgoing is not None and self.mailer is not None
        queue = self._outgoing
        while True:
            batch = [await queue.get()]
            while len(batch) < _MAIL_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            messages = []
            for build in batch:
                try:
                    messages.append(build())
                except Exception:
                    log.exception("could not build a report")
            try:
                results = await self.mailer.send_batch(messages) if messages else []
                failed = [(m, e) for m, e in zip(messages, results, strict=True) if e]
                if failed:
                    log.warning("could not send %d report(s), to %s ...: %s", len(failed),
                                failed[0][0]["To"], failed[0][1])
            except Exception:
                log.exception("report delivery failed")
            finally:
                for _ in batch:
                    queue.task_done()

    async def aclose(self, timeout: float = 10.0) -> None:
        """Let queued report emails go out (bounded), then stop the sender."""
        if self._outgoing is not None:
            try:
                await asyncio.wait_for(self._outgoing.join(), timeout)
            except TimeoutError:
                log.warning("%d report(s) not sent at shutdown", self._outgoing.qsize())
        if self._mail_worker is not None:
            self._mail_worker.cancel()
