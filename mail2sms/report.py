"""The report emails a sender gets back: what was queued, skipped, deferred, or why not."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from campaigns.plan import Plan
from store.models import MessageStatus

_ENCODING_NAMES = {"gsm7": "GSM-7", "ucs2": "UCS-2 (Unicode)"}


def _subject(original: str, summary: str) -> str:
    original = " ".join(original.split())[:120]
    return f"[SMS] {summary}" + (f" — {original}" if original else "")


def _new_message(*, sender_addr: str, to: str, subject: str, in_reply_to: str | None,
                 timezone: str, lines: list[str]) -> Message:
    """A text/plain UTF-8 email. Built with the compat32 classes: reports go out for
    every accepted email, and the modern EmailMessage API costs several times more."""
    msg = MIMEText("\n".join(lines) + "\n", "plain", "utf-8")
    msg["From"] = sender_addr
    msg["To"] = to
    msg["Subject"] = Header(subject, "utf-8")
    msg["Date"] = format_datetime(datetime.now(ZoneInfo(timezone)))
    msg["Message-ID"] = make_msgid(domain=sender_addr.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-replied"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    return msg


def summary_line(plan: Plan) -> str:
    if plan.refused:
        return "refused"
    counts = Counter(m.status for m in plan.messages)
    parts = []
    for status in (MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SKIPPED,
                   MessageStatus.REFUSED):
        if counts.get(status):
            parts.append(f"{counts[status]} {status}")
    return ", ".join(parts) or "nothing to send"


def plan_report(plan: Plan, *, request_id: int | None, sender_addr: str, to: str,
                timezone: str, cost: Callable[[int], str | None] = lambda _s: None
                ) -> Message:
    """The report for an accepted or refused request."""
    request = plan.request
    lines: list[str] = []
    if plan.refused:
        subject = _subject(request.subject, "not sent")
        lines += ["Your message was NOT sent.", "", f"Reason: {plan.refused}", ""]
    else:
        subject = _subject(request.subject, summary_line(plan))
        ref = f" (request #{request_id})" if request_id else ""
        lines.append(f"Your message was accepted{ref}.")
        if request.draft:
            lines.append(f"It is a DRAFT: nothing goes out until it is released (mail2sms "
                         f"sends release {request_id}, or POST /api/sends/{request_id}/release).")
        lines.append("")
        sendable = [m for m in plan.messages
                    if m.status in (MessageStatus.QUEUED, MessageStatus.DEFERRED)]
        if sendable:
            segs = sum(m.segments for m in sendable)
            per = Counter((m.segments, m.encoding) for m in sendable)
            shape = "; ".join(
                f"{n} × {s} part{'s' if s > 1 else ''} ({_ENCODING_NAMES.get(e, e)})"
                for (s, e), n in sorted(per.items())
            )
            lines.append(f"Queued: {len(sendable)} SMS, {segs} part(s) in all: {shape}.")
            price = cost(segs)
            if price is not None:
                lines.append(f"Cost: {price} ({segs:,} segment(s)).")
            lines.append(f"Category: {plan.category}. Sender: {plan.sender}.")
        if plan.credit_left is not None:
            lines.append(f"Credit: {plan.segments:,} segment(s) taken, "
                         f"{plan.credit_left:,} left.")
        if plan.not_before:
            local = plan.not_before.astimezone(ZoneInfo(timezone))
            lines.append(f"Deferred until {local:%A %d %B %Y at %H:%M} ({timezone}).")
        not_sent = [m for m in plan.messages
                    if m.status in (MessageStatus.SKIPPED, MessageStatus.REFUSED)]
        if not_sent:
            lines += ["", f"Not sent to {len(not_sent)} number(s):"]
            lines += [f"  {m.raw}: {m.reason}" for m in not_sent[:200]]
            if len(not_sent) > 200:
                lines.append(f"  … and {len(not_sent) - 200} more")
        if sendable:
            lines += ["", "Text sent:", *(f"> {line}" for line in sendable[0].text.splitlines())]
    if plan.notices:
        lines += ["", "Notes:", *(f"  - {n}" for n in plan.notices)]
    return _new_message(sender_addr=sender_addr, to=to, subject=subject,
                        in_reply_to=request.email_message_id, timezone=timezone, lines=lines)


def credit_alert(*, left: int, threshold: int, to: list[str], sender_addr: str,
                 timezone: str) -> Message:
    """The email to ``credit.alert_to`` when the balance falls under the threshold."""
    lines = [
        f"The SMS credit is low: {left:,} segment(s) left, under the alert threshold of "
        f"{threshold:,} (credit.alert_below).",
        "",
        "Sends larger than the credit left are refused whole. To top up, on the server:",
        "",
        "    mail2sms credit add SEGMENTS",
        "",
        "(`mail2sms credit show` gives the balance, `mail2sms credit history` the ledger.)",
        "This alert is sent once; the next one after the balance has been topped up.",
    ]
    return _new_message(sender_addr=sender_addr, to=", ".join(to),
                        subject=f"[SMS] credit low: {left:,} segment(s) left",
                        in_reply_to=None, timezone=timezone, lines=lines)


def error_report(*, subject: str, in_reply_to: str | None, reason: str, sender_addr: str,
                 to: str, timezone: str) -> Message:
    """The report for an email that could not be read at all."""
    return _new_message(sender_addr=sender_addr, to=to, subject=_subject(subject, "not sent"),
                        in_reply_to=in_reply_to, timezone=timezone,
                        lines=["Your message was NOT sent.", "", f"Reason: {reason}"])
