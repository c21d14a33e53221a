"""The report emails a sender gets back: what was queued, skipped, deferred, or why not."""

from __future__ import annotations

from collections import Counter
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from campaigns.plan import Plan
from store.models import MessageStatus

_ENCODING_NAMES = {"gsm7": "GSM-7", "ucs2": "UCS-2 (Unicode)"}


def _subject(original: str, summary: str) -> str:
    original = " ".join(original.split())[:120]
    return f"[SMS] {summary}" + (f" — {original}" if original else "")


def _thread(msg: EmailMessage, in_reply_to: str | None) -> None:
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to


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
                timezone: str) -> EmailMessage:
    """The report for an accepted or refused request."""
    request = plan.request
    msg = EmailMessage()
    msg["From"] = sender_addr
    msg["To"] = to
    msg["Date"] = format_datetime(_now_local(timezone))
    msg["Message-ID"] = make_msgid(domain=sender_addr.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-replied"
    _thread(msg, request.email_message_id)
    lines: list[str] = []
    if plan.refused:
        msg["Subject"] = _subject(request.subject, "not sent")
        lines += ["Your message was NOT sent.", "", f"Reason: {plan.refused}", ""]
    else:
        msg["Subject"] = _subject(request.subject, summary_line(plan))
        ref = f" (request #{request_id})" if request_id else ""
        lines.append(f"Your message was accepted{ref}.")
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
            lines.append(f"Category: {plan.category}. Sender: {plan.sender}.")
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
    msg.set_content("\n".join(lines) + "\n")
    return msg


def error_report(*, subject: str, in_reply_to: str | None, reason: str, sender_addr: str,
                 to: str, timezone: str) -> EmailMessage:
    """The report for an email that could not be read at all."""
    msg = EmailMessage()
    msg["From"] = sender_addr
    msg["To"] = to
    msg["Date"] = format_datetime(_now_local(timezone))
    msg["Message-ID"] = make_msgid(domain=sender_addr.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-replied"
    msg["Subject"] = _subject(subject, "not sent")
    _thread(msg, in_reply_to)
    msg.set_content(f"Your message was NOT sent.\n\nReason: {reason}\n")
    return msg


def _now_local(timezone: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.now(ZoneInfo(timezone))
