"""What happens to a SendRequest, whichever intake it came from."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from campaigns.plan import Plan, UserPolicy
from campaigns.queue import prepare, queue_request
from campaigns.request import SendRequest
from gateway.mailer import Mailer
from mail2sms.config import Config
from mail2sms.report import error_report, plan_report, summary_line
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
            self._mail(lambda: plan_report(
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
