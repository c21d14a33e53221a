"""What the inbound pipeline reads and returns: the SMS, the settings, each step's verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from sqlmodel import Session

#: Returns aware "now"; tests pass a fixed one.
Clock = Callable[[], datetime]

#: A write a step wants done in the pipeline's transaction (skipped in a dry run).
Write = Callable[[Session], Any]

# Used when the rules file gives no text: DESIGN.md requires the opt-out confirmation,
# and a START must be acknowledged for the person to know it worked.
DEFAULT_OPTOUT_REPLY = (
    "Vous ne recevrez plus de SMS de notre part. Envoyez START pour vous réabonner."
)
DEFAULT_OPTIN_REPLY = "Vous recevrez de nouveau nos SMS. Envoyez STOP pour ne plus en recevoir."


def utc_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Sms:
    """One received SMS (MO) as the gateway gave it."""

    sender: str  # E.164 when it parses, else as received
    receiver: str  # our shortcode or long number ('' when the gateway does not say)
    text: str
    dedup_key: str
    gateway_id: str | None = None
    gateway_time: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class Settings:
    """The configuration values the pipeline needs (passed in, never read from files)."""

    forward_to: tuple[str, ...] = ()  # inbound.forward_to: every forwarded SMS
    reply_to_sender: bool = True  # inbound.reply_to_sender: mail the last staff writer
    domain: str = "sms.example.com"  # first smtp.domains entry: <number>@domain
    mail_from: str = "sms@sms.example.com"  # mail_out.from (envelope and fallback From)
    timezone: str = "Europe/Paris"
    country: str = "FR"  # compliance.country: how national numbers are read
    transliterate: bool = False  # compliance.transliterate: GSM-7 look-alikes in replies
    max_per_day: int = 50  # compliance.max_per_number_per_day, replies included
    fallback_every: float = 24 * 3600.0  # seconds between two fallback replies to a number
    optout_reply: str = DEFAULT_OPTOUT_REPLY
    optin_reply: str = DEFAULT_OPTIN_REPLY


@dataclass
class Decision:
    """One step's verdict: what it decided, why, and whether the SMS is settled."""

    step: str
    decision: str  # short: "pass", "opted out", "keyword", "duplicate" ...
    reason: str  # a sentence an admin reads in `rules try` and on the Inbound row
    done: bool = False  # True: no later step runs
    replies: list[str] = field(default_factory=list)  # SMS texts to send back
    emails: list[Message] = field(default_factory=list)  # built, sent after the commit
    mailed_to: list[str] = field(default_factory=list)  # who those emails go to
    writes: list[Write] = field(default_factory=list)  # not done in a dry run
    rule: str | None = None  # keyword rule or survey that answered
    #: Replies to send even to an opted-out number (only the STOP confirmation).
    to_opted_out: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "decision": self.decision,
                               "reason": self.reason, "done": self.done}
        if self.replies:
            out["replies"] = list(self.replies)
        if self.mailed_to:
            out["mailed_to"] = list(self.mailed_to)
        if self.rule:
            out["rule"] = self.rule
        return out

    def describe(self) -> str:
        """One line for `rules try`."""
        line = f"{self.step:<9} {self.decision}: {self.reason}"
        for reply in self.replies:
            indented = reply.replace("\n", "\n" + " " * 17)
            line += f"\n{'':<9} reply: {indented}"
        if self.mailed_to:
            line += f"\n{'':<9} mail to: {', '.join(self.mailed_to)}"
        return line


def passed(step: str, reason: str) -> Decision:
    """Nothing for this step to do: the SMS goes on to the next one."""
    return Decision(step, "pass", reason)
