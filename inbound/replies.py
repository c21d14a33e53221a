"""The email that carries an SMS reply to staff mailboxes.

From and Reply-To are ``<number>@<domain>``, so answering from the mail client sends an
SMS back through the SMTP intake; the copy to the person who wrote is threaded under
their original email (In-Reply-To, References, ``Re:`` subject).
"""

from __future__ import annotations

import re
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from inbound.model import Settings, Sms
from sms.phones import normalise
from store.inbound import StaffWriter

_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|tr|fwd?|fw|aw|sv)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
# Digit runs as people write numbers in a Subject: "06 12 34 56 78", "+33 (0)6 …".
_NUMBER_RUN = re.compile(r"\+?\d[\d .()\-]{5,}\d")
# C0/C1 controls other than newline and tab have no place in a mail body.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def contact_name(contact: dict[str, Any]) -> str:
    parts = (str(contact.get("first_name") or ""), str(contact.get("last_name") or ""))
    return " ".join(p.strip() for p in parts if p.strip())


def reply_address(number: str, settings: Settings) -> str:
    """``+33612345678@sms.example.com``: writing to it sends an SMS to the number."""
    return f"{number}@{settings.domain}"


def safe_to_answer(subject: str, number: str, country: str) -> bool:
    """True when answering ``Re: <subject>`` would reach ``number`` only.

    The SMTP intake reads recipients and options from the Subject too: a reply to
    "06 11 22 33 44, #Team [marketing]" must not go to the whole team again.
    """
    if "#" in subject or "[" in subject:
        return False
    for found in _NUMBER_RUN.finditer(subject):
        if normalise(found.group(), country).e164 != number:
            return False
    return True


def reply_subject(sms: Sms, writer: StaffWriter | None, country: str) -> str:
    original = " ".join((writer.subject if writer else "").split())
    original = _REPLY_PREFIX.sub("", original).strip()
    if original and safe_to_answer(original, sms.sender, country):
        return f"Re: {original}"
    return f"SMS from {sms.sender}"


def _body(sms: Sms, contact: dict[str, Any], settings: Settings, received: datetime,
          rule: str | None) -> str:
    name = contact_name(contact)
    local = received.astimezone(ZoneInfo(settings.timezone))
    who = f"{sms.sender} ({name})" if name else sms.sender
    lines = [
        f"SMS from {who}",
        f"Received: {local:%A %d %B %Y at %H:%M} ({settings.timezone})",
    ]
    if sms.receiver:
        lines.append(f"Sent to: {sms.receiver}")
    if rule:
        lines.append(f"Rule: {rule}")
    text = _CONTROLS.sub("\ufffd", sms.text) or "(empty SMS)"
    lines += ["", text, "", "-- ",
              f"Answer this email to send an SMS to {sms.sender}: write above the quoted "
              "text, which is not sent."]
    return "\n".join(lines) + "\n"


def build_reply(
    sms: Sms,
    *,
    to: str,
    contact: dict[str, Any],
    settings: Settings,
    received: datetime,
    writer: StaffWriter | None = None,
    rule: str | None = None,
) -> Message:
    """The email for ``to``; threaded under ``writer``'s email when given."""
    msg = MIMEText(_body(sms, contact, settings, received, rule), "plain", "utf-8")
    name = contact_name(contact)
    display = f"{sms.sender} ({name})" if name else sms.sender
    address = reply_address(sms.sender, settings)
    msg["From"] = formataddr((display, address))  # RFC 2047-encoded when not ASCII
    msg["Reply-To"] = address
    msg["To"] = to
    if writer is not None:
        subject = reply_subject(sms, writer, settings.country)
        if writer.email_message_id:
            msg["In-Reply-To"] = writer.email_message_id
            msg["References"] = writer.email_message_id
    else:
        subject = f"SMS from {sms.sender}"  # a name here would be a word to parse
    msg["Subject"] = Header(subject, "utf-8") if not subject.isascii() else subject
    msg["Date"] = format_datetime(received.astimezone(ZoneInfo(settings.timezone)))
    msg["Message-ID"] = make_msgid(domain=settings.domain)
    # RFC 3834: vacation responders must not answer this (their answer could become an SMS)
    msg["Auto-Submitted"] = "auto-generated"
    return msg
