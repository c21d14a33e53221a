"""What happens to a SendRequest, whichever intake it came from."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from campaigns.plan import Plan, UserPolicy
from campaigns.queue import prepare, queue_request
from campaigns.request import SendRequest
from gateway.mailer import Mailer
from mail2sms.config import Config
from mail2sms.report import error_report, plan_report, summary_line
from store.db import Database

log = logging.getLogger("mail2sms.service")


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
        self._tasks: set[asyncio.Task] = set()

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
            shortcode=self.config.gateway.shortcode))

    async def submit(self, request: SendRequest, *, report: bool = True) -> Outcome:
        """Plan and commit the request; the report email goes out in the background."""
        policy = self.policy_for(request.user)
        plan, request_id = await self.db.run(lambda s: queue_request(
            s, request, policy=policy, compliance=self.config.compliance,
            shortcode=self.config.gateway.shortcode))
        outcome = Outcome(plan, request_id)
        if not plan.refused:
            self.wake()
        if report:
            self._mail(plan_report(
                plan, request_id=request_id, sender_addr=self.config.mail_out.from_,
                to=request.user, timezone=self.config.compliance.timezone))
        return outcome

    def report_parse_error(self, user: str, raw: bytes, reason: str) -> None:
        subject, message_id = "", None
        try:
            head = email.message_from_bytes(raw[:65536], policy=email.policy.default)
            subject = str(head.get("Subject", ""))
            message_id = str(head.get("Message-ID", "")) or None
        except Exception:  # the report goes out even when the headers are junk
            pass
        self._mail(error_report(
            subject=subject, in_reply_to=message_id, reason=reason,
            sender_addr=self.config.mail_out.from_, to=user,
            timezone=self.config.compliance.timezone))

    def _mail(self, message: EmailMessage) -> None:
        if self.mailer is None:
            return
        task = asyncio.get_running_loop().create_task(self._send_mail(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_mail(self, message: EmailMessage) -> None:
        assert self.mailer is not None
        try:
            await self.mailer.send(message)
        except Exception as exc:
            log.warning("could not send the report to %s: %s", message["To"], exc)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Let pending report emails finish."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
